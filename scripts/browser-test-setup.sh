#!/usr/bin/env bash
# Make Debian's Chromium available to the browser tests (tests/browser.py).
#
# Idempotent: does nothing when a Chromium is already there (`chromium` on
# PATH or /usr/bin/chromium, or the binary NOIM_CHROMIUM names).  Otherwise, as root with apt-get,
# installs the Debian package `chromium` (and fonts-liberation, so pages render
# with real metric-compatible fonts), running `apt-get update` first only when
# the package is not known yet or the first try fails.  Never downloads a
# browser build of its own (`playwright install` is not used).  Never fails:
# when no Chromium can be had it says why, and the browser tests skip (or fail
# under CI=true, see tests/browser.py).
set -u

say() { echo "browser-test-setup: $*"; }

find_chromium() {
  if command -v chromium >/dev/null 2>&1; then
    command -v chromium
  elif [ -x /usr/bin/chromium ]; then
    echo /usr/bin/chromium
  fi
}

# NOIM_CHROMIUM, when set, is the only binary the tests try (tests/browser.py): install nothing.
if [ -n "${NOIM_CHROMIUM:-}" ]; then
  if [ -f "$NOIM_CHROMIUM" ] && [ -x "$NOIM_CHROMIUM" ]; then
    say "Chromium ready: NOIM_CHROMIUM=$NOIM_CHROMIUM ($("$NOIM_CHROMIUM" --version 2>/dev/null | head -n 1))"
  else
    say "NOIM_CHROMIUM=$NOIM_CHROMIUM is not an executable file; browser tests will skip (fail under CI=true)"
  fi
  exit 0
fi

found=$(find_chromium)
if [ -n "$found" ]; then
  say "Chromium ready: $found ($("$found" --version 2>/dev/null | head -n 1))"
  exit 0
fi

if [ "$(id -u)" != "0" ]; then
  say "no Chromium, and only root can install it (apt-get install chromium); browser tests will skip"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  say "no Chromium and no apt-get here; install Chromium and set NOIM_CHROMIUM to it, or browser tests will skip"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
PACKAGES="chromium fonts-liberation"
# Another process may hold the dpkg lock for a while: wait for it rather than fail.
APT="apt-get -qq -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=600"

install() { $APT install -y --no-install-recommends $PACKAGES >/tmp/noim-browser-apt.log 2>&1; }

say "installing $PACKAGES with apt-get (Debian packages, no browser download)"
if ! apt-cache show chromium >/dev/null 2>&1 || ! install; then
  say "running apt-get update first"
  $APT update >/tmp/noim-browser-apt.log 2>&1 || say "apt-get update failed (see /tmp/noim-browser-apt.log)"
  if ! install; then
    say "could not install $PACKAGES (see /tmp/noim-browser-apt.log); browser tests will skip"
    exit 0
  fi
fi

found=$(find_chromium)
if [ -z "$found" ]; then
  say "apt-get installed $PACKAGES but no chromium binary was found; browser tests will skip"
  exit 0
fi
say "Chromium ready: $found ($("$found" --version 2>/dev/null | head -n 1))"
