#!/usr/bin/env bash
# The system packages the tests need beyond Python, from Debian's archive only (never a browser or anything else
# downloaded from elsewhere: no `playwright install`):
#   chromium                     headless browser for the web pages' tests and screenshots
#   libreoffice-calc-nogui       `soffice --headless` prints work lists to PDF (tests/test_worklist_print.py);
#                                where that package does not exist: libreoffice-calc + libreoffice-core
#   fonts-noto-cjk               Chinese glyphs in the PDFs and screenshots
#   fonts-crosextra-carlito      metric twin of Calibri, the work lists' font: LibreOffice lays them out as Excel does
# Installed with apt-get (--no-install-recommends) when running as root and something is missing; otherwise says
# what is missing and goes on (the tests that need it skip, saying why). Usage: test-packages.sh STAMP — STAMP is
# touched once everything is there, so `make` runs this only once.
set -euo pipefail
stamp="${1:?usage: test-packages.sh STAMP}"

have() { command -v "$1" >/dev/null 2>&1; }
font() { have fc-list && fc-list "$1" family 2>/dev/null | grep -q .; }

missing=()
have chromium || missing+=(chromium)
have soffice || missing+=(libreoffice)
font ":lang=zh" || missing+=(fonts-noto-cjk)
font "Carlito" || missing+=(fonts-crosextra-carlito)

if [ ${#missing[@]} -eq 0 ]; then
    echo "test packages: chromium, soffice, Chinese and Carlito fonts present"
    touch "$stamp"
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! have apt-get; then
    echo "test packages missing: ${missing[*]} — not installing (needs root and apt-get); the tests that need them" \
         "will skip. As root: apt-get install --no-install-recommends ${missing[*]/libreoffice/libreoffice-calc-nogui}" >&2
    exit 0
fi

echo "test packages: installing ${missing[*]} with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
packages=()
for name in "${missing[@]}"; do
    if [ "$name" = libreoffice ]; then
        if apt-cache show libreoffice-calc-nogui >/dev/null 2>&1; then
            packages+=(libreoffice-calc-nogui)
        else
            packages+=(libreoffice-calc libreoffice-core)
        fi
    else
        packages+=("$name")
    fi
done
apt-get install -y -q --no-install-recommends "${packages[@]}"
touch "$stamp"
