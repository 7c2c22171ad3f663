#!/bin/bash
# Makes bookworm-backports available to apt without touching any existing source file:
#   bash scripts/apt_backports.sh [APT_DIR]      (default /etc/apt)
# If a source (one-line sources.list / *.list, or deb822 *.sources) already names bookworm-backports,
# nothing is written. Otherwise a file of our own, APT_DIR/sources.list.d/fla-bookworm-backports.sources,
# is added, taking the mirror URI and keyring of the existing Debian bookworm source (so a local mirror keeps
# being used), with deb.debian.org and Debian's archive keyring when there is none.
# Prints one line on stdout: "present" (nothing written) or "added FILE".
set -euo pipefail
apt=${1:-/etc/apt}
ours="$apt/sources.list.d/fla-bookworm-backports.sources"

one_line_files() { ls "$apt/sources.list" "$apt"/sources.list.d/*.list 2>/dev/null || true; }
deb822_files() { ls "$apt"/sources.list.d/*.sources 2>/dev/null || true; }

# A one-line entry: "deb [options] URI SUITE COMPONENTS..." (comments and deb-src ignored).
one_line_has_backports() {
  local f
  for f in $(one_line_files); do
    awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ } if ($(i+1) == "bookworm-backports") found = 1 }
         END { exit !found }' "$f" && return 0
  done
  return 1
}

# A deb822 stanza whose Types has deb, Suites has bookworm-backports, and that is not "Enabled: no".
deb822_has_backports() {
  local f
  for f in $(deb822_files); do
    awk 'function flush() { if (deb && bp && enabled) found = 1; deb = 0; bp = 0; enabled = 1 }
         BEGIN { enabled = 1 }
         /^[ \t]*$/ { flush(); next }
         /^#/ { next }
         tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
         tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == "bookworm-backports") bp = 1 }
         tolower($1) == "enabled:" { if (tolower($2) == "no") enabled = 0 }
         END { flush(); exit !found }' "$f" && return 0
  done
  return 1
}

# "URI KEYRING" of the first Debian bookworm source (KEYRING may be empty).
bookworm_source() {
  local f
  for f in $(deb822_files); do
    awk 'function flush() { if (deb && bw && uri != "" && !done) { print uri, key; done = 1 } deb = 0; bw = 0; uri = ""; key = "" }
         /^[ \t]*$/ { flush(); next }
         /^#/ { next }
         tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
         tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == "bookworm") bw = 1 }
         tolower($1) == "uris:" { uri = $2 }
         tolower($1) == "signed-by:" { key = $2 }
         END { flush() }' "$f"
  done
  for f in $(one_line_files); do
    awk '$1 == "deb" { key = ""; i = 2
           if ($2 ~ /^\[/) { s = ""; while (i <= NF) { s = s " " $i; if ($i ~ /\]$/) break; i++ } i++
                             if (match(s, /signed-by=[^] ]+/)) key = substr(s, RSTART + 10, RLENGTH - 10) }
           if ($(i+1) == "bookworm") { print $i, key; exit } }' "$f"
  done
}

if one_line_has_backports || deb822_has_backports; then
  echo present
  exit 0
fi
read -r uri key < <(bookworm_source | head -1) || true
uri=${uri:-http://deb.debian.org/debian}
key=${key:-/usr/share/keyrings/debian-archive-keyring.gpg}
mkdir -p "$apt/sources.list.d"
tmp="$ours.tmp.$$"
printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' "$uri" "$key" > "$tmp"
mv "$tmp" "$ours"
echo "added $ours"
