"""Join QR codes, drawn server-side as a compact SVG (one path, runs of dark modules per row)."""
from __future__ import annotations

import qrcode
from django.utils.html import format_html
from django.utils.safestring import SafeString


def qr_svg(data: str, label: str) -> SafeString:
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=2)
    qr.add_data(data)
    qr.make(fit=True)
    matrix = qr.get_matrix()
    size = len(matrix)
    runs = []
    for y, row in enumerate(matrix):
        x = 0
        while x < size:
            if row[x]:
                start = x
                while x < size and row[x]:
                    x += 1
                runs.append(f"M{start} {y}h{x - start}v1h-{x - start}z")
            else:
                x += 1
    return format_html(
        '<svg class="qr" viewBox="0 0 {} {}" role="img" aria-label="{}" shape-rendering="crispEdges">'
        '<rect width="{}" height="{}" class="qr-bg"/><path d="{}" class="qr-fg"/></svg>',
        size, size, label, size, size, "".join(runs),
    )
