from typing import Any

class WebsocketDenier:
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None: ...
