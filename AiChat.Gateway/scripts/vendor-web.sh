#!/usr/bin/env bash
# Copies the web client's third-party modules from pinned npm packages into wwwroot/vendor, with their licences.
# The files are committed, so running AiChat needs no Node.js or build step; run this only to change a version.
set -euo pipefail
cd "$(dirname "$0")/.."

MARKED=18.2.1      # Markdown to HTML (MIT)
DOMPURIFY=3.5.0    # HTML sanitiser, run on marked's output before it reaches the page (Apache-2.0 or MPL-2.0)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "marked@$MARKED" "dompurify@$DOMPURIFY" >/dev/null)
mkdir -p "$work/marked" "$work/dompurify"
tar xzf "$work/marked-$MARKED.tgz" -C "$work/marked" --strip-components=1
tar xzf "$work/dompurify-$DOMPURIFY.tgz" -C "$work/dompurify" --strip-components=1

out=wwwroot/vendor
rm -rf "$out" && mkdir -p "$out"
# The ES module builds, without their source-map comment (the maps are not shipped).
sed '/^\/\/# sourceMappingURL=/d' "$work/marked/lib/marked.esm.js" > "$out/marked.esm.js"
sed '/^\/\/# sourceMappingURL=/d' "$work/dompurify/dist/purify.es.mjs" > "$out/purify.es.mjs"
cp "$work/marked/LICENSE" "$out/marked.LICENSE"
cp "$work/dompurify/LICENSE" "$out/dompurify.LICENSE"
printf 'marked %s\ndompurify %s\n' "$MARKED" "$DOMPURIFY" > "$out/VERSIONS"
echo "vendored: $(tr '\n' ' ' < "$out/VERSIONS")"
