#!/bin/sh
# Regenerates the seed corpora in fuzz/corpus/ from the real encoders and the real
# command line: a selection of toml-test's valid documents and three exported lineages
# (toml); HELLO, REFUSE, OPS and ACK messages (wire), HELLO bodies (judge) and batches
# and vectors (codec) and beacons (beacon) from make_corpus; bundle and vector files written by `stemma
# changes` and `stemma vector` from small migrated databases (bundle).
#
#   fuzz/make_corpus.sh [BUILD_DIR]     (default build-fuzz, as scripts/fuzz makes it)
#
# BUILD_DIR must hold make_corpus and stemma (`cmake --build BUILD_DIR --target fuzz`).
# The output is committed; run this again only when a format changes. Needs sqlite3.
set -eu
cd "$(dirname "$0")/.."
build=${1:-build-fuzz}
out=fuzz/corpus
stemma="$build/stemma"
# The fuzz build's stemma runs under LeakSanitizer, which a short-lived command line
# does not need to satisfy.
export ASAN_OPTIONS=detect_leaks=0

rm -rf "$out"
for t in toml wire codec bundle judge beacon; do
    mkdir -p "$out/$t"
done

# toml: one of each kind of thing toml-test checks, and real exports.
valid=tests/data/toml-test/valid
for f in example spec-example-1 newline-crlf utf8-bom-01 multibyte implicit-and-explicit-after \
    array/array-subtables array/nested-inline-table array/mixed-string-table \
    comment/everywhere comment/tricky datetime/datetime datetime/edge float/float \
    float/inf-and-nan integer/integer integer/literals inline-table/key-dotted-04 \
    inline-table/nest key/escapes key/quoted-dots key/dotted-01 string/escapes \
    string/multiline string/raw-multiline string/multiline-quotes string/unicode-escape \
    table/array-many table/array-nest table/array-within-dotted table/without-super; do
    cp "$valid/$f.toml" "$out/toml/$(echo "$f" | tr / -).toml"
done
"$stemma" export --schemas schemas/tasks -o "$out/toml/export-tasks.toml"
"$stemma" export --schemas schemas/tasks-fork -o "$out/toml/export-tasks-fork.toml"
"$stemma" export --schemas tests/data/schemas/unsynced -o "$out/toml/export-unsynced.toml"
# format 2: a table's keys setting and a key collation
"$stemma" export --schemas tests/data/schemas/accounts -o "$out/toml/export-accounts.toml"

# wire, judge, codec, beacon: from the encoders.
"$build/make_corpus" . "$out"

# bundle: a database at v4 with every kind of change, and one at v2 that has some of them.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/stemma-corpus.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$stemma" migrate --db "$tmp/a.db" --schemas schemas/tasks --no-backup >/dev/null
sqlite3 "$tmp/a.db" "
INSERT INTO lists (id, name) VALUES ('inbox', 'Inbox'), ('later', 'Later');
INSERT INTO tasks (id, list_id, title, priority, tags, notes)
    VALUES ('t1', 'inbox', 'write the fuzzers', 2, '[\"ci\"]', NULL),
           ('t2', 'later', 'read the crashes', 2.5, '[]', X'0001ff');
UPDATE tasks SET done = 1 WHERE id = 't1';
INSERT INTO comments (id, task_id, author, body) VALUES ('c1', 't1', 'ann', 'ok');
DELETE FROM lists WHERE id = 'later';"
"$stemma" changes --db "$tmp/a.db" -o "$out/bundle/all.stmb" >/dev/null
"$stemma" vector --db "$tmp/a.db" -o "$out/bundle/vector-a.stmv" >/dev/null
"$stemma" migrate --db "$tmp/b.db" --schemas schemas/tasks --to 2 --no-backup >/dev/null
"$stemma" changes --db "$tmp/b.db" -o "$out/bundle/empty.stmb" >/dev/null
"$stemma" vector --db "$tmp/b.db" -o "$out/bundle/vector-empty.stmv" >/dev/null
sqlite3 "$tmp/b.db" "INSERT INTO lists (id, name) VALUES ('home', 'Home');"
"$stemma" apply --db "$tmp/b.db" "$out/bundle/all.stmb" >/dev/null 2>&1
"$stemma" vector --db "$tmp/b.db" -o "$out/bundle/vector-b.stmv" >/dev/null
"$stemma" changes --db "$tmp/b.db" --since "$out/bundle/vector-a.stmv" \
    -o "$out/bundle/since-a.stmb" >/dev/null

for t in toml wire codec bundle judge beacon; do
    echo "$out/$t: $(ls "$out/$t" | wc -l) files, $(du -sk "$out/$t" | cut -f1) KB"
done
