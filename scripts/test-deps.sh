#!/usr/bin/env bash
# What `make test` needs besides Python: Debian's Chromium (the browser tests drive it through
# Playwright; never `playwright install`), redis-server (the multi-process tests start their
# own) and fontconfig (the glyph test asks it which fonts cover a character). Installs what is
# missing with apt where apt is there and we may use it; otherwise says exactly what to install
# and lets the run go on: the tests that need a missing part skip with that reason.
set -uo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v fc-list >/dev/null 2>&1 || need+=(fontconfig)
[ ${#need[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; fi
if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" -eq 0 ] || [ -n "$sudo" ]; }; then
  echo "distviz: installing ${need[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq && $sudo apt-get install -y -qq "${need[@]}" >/dev/null && exit 0
  echo "distviz: apt-get could not install ${need[*]}"
fi
echo "distviz: the full test run also needs: ${need[*]}"
echo "  Debian/Ubuntu: sudo apt-get install ${need[*]}"
echo "  elsewhere: Chromium at /usr/bin/chromium (or set DISTVIZ_CHROMIUM), redis-server on PATH, fontconfig's fc-list"
echo "  running everything that can run without them."
exit 0
