#!/usr/bin/env bash
# Make sure a virtual X server (Xvfb) and the libraries Qt needs are installed (Debian/Ubuntu).
set -euo pipefail
need=""
command -v Xvfb >/dev/null 2>&1 || need=1
ldconfig -p 2>/dev/null | grep -q libxcb-cursor.so.0 || need=1
ldconfig -p 2>/dev/null | grep -q libxkbcommon-x11.so.0 || need=1
ldconfig -p 2>/dev/null | grep -q libxcb-icccm.so.4 || need=1
[ -z "$need" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure_xvfb: please install Xvfb and Qt's xcb libraries with your package manager" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "ensure_xvfb: installing xvfb and Qt's X11 libraries with apt-get"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
  xvfb xauth libgl1 libegl1 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0 \
  libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 \
  libxcb-xfixes0 libdbus-1-3 libfontconfig1 >/dev/null
