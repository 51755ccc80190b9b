"""No secret key in the repository: it comes from the environment or a key file made on first run
(at least 256 bits, readable by its owner only, reused); with debug off and no key, no start."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRINT_KEY = "import django, os; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)"


def run(tmp_path: Path, debug: bool, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SECRET_KEY", "DJANGO_DEBUG", "DISTVIZ_SECRET_KEY_FILE")}
    clean.update({"DJANGO_SETTINGS_MODULE": "distviz.settings", "DJANGO_DEBUG": "true" if debug else "false",
                  "DISTVIZ_SECRET_KEY_FILE": str(tmp_path / "key"), "DJANGO_ALLOWED_HOSTS": "localhost"}, **env)
    return subprocess.run([sys.executable, "-c", PRINT_KEY], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60)


def test_the_first_run_makes_a_private_key_file_and_later_runs_reuse_it(tmp_path):
    first = run(tmp_path, debug=True)
    assert first.returncode == 0, first.stderr
    key = first.stdout.strip()
    path = tmp_path / "key"
    assert path.read_text().strip() == key
    assert len(key) * 6 >= 256, "fewer than 256 bits"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600, oct(path.stat().st_mode)
    again = run(tmp_path, debug=True)
    assert again.stdout.strip() == key, "a second start made a new key: every session cookie would be invalid"
    prod = run(tmp_path, debug=False)
    assert prod.returncode == 0 and prod.stdout.strip() == key


def test_with_debug_off_and_no_key_the_process_refuses_to_start(tmp_path):
    out = run(tmp_path, debug=False)
    assert out.returncode != 0
    assert "No secret key" in out.stderr and "DJANGO_SECRET_KEY" in out.stderr
    assert not (tmp_path / "key").exists()


def test_the_environment_wins_over_the_file(tmp_path):
    out = run(tmp_path, debug=False, DJANGO_SECRET_KEY="k" * 60)
    assert out.returncode == 0 and out.stdout.strip() == "k" * 60


def test_a_short_key_file_is_refused(tmp_path):
    (tmp_path / "key").write_text("short\n")
    out = run(tmp_path, debug=True)
    assert out.returncode != 0 and "shorter than 256 bits" in out.stderr


def test_no_secret_key_is_written_in_the_repository():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert ".secret-key" not in tracked
    settings = (ROOT / "distviz" / "settings.py").read_text()
    assert "SECRET_KEY = \"" not in settings and "insecure" not in settings
    assert ".secret-key" in (ROOT / ".gitignore").read_text()
