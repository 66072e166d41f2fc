# docblock.sh: sourced by compare.sh and load.sh, which regenerate their
# part of BENCHMARKS.md with it.

# run_label prints when and of what a run was taken: the date (UTC), the
# commit, "+ uncommitted changes" when the tree has some outside the
# documents, and the CPU.
run_label() {
	local commit dirty=""
	commit=$(git rev-parse --short HEAD 2>/dev/null || echo "no commit")
	# The figures this writes are no change of the code measured.
	git diff --quiet HEAD -- . ':!BENCHMARKS.md' ':!docs' 2>/dev/null || dirty=" + uncommitted changes"
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $commit$dirty; $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; $(go version | cut -d' ' -f3)"
}

# write_doc_block NAME FILE replaces the lines of BENCHMARKS.md between
# "<!-- NAME: begin -->" and "<!-- NAME: end -->" with the contents of
# FILE. Without both markers it changes nothing and fails, saying so.
write_doc_block() {
	local doc=BENCHMARKS.md begin="<!-- $1: begin -->" end="<!-- $1: end -->"
	if ! grep -qxF "$begin" "$doc" || ! grep -qxF "$end" "$doc"; then
		echo "$doc has no block between \"$begin\" and \"$end\"; put them back to have it regenerated" >&2
		return 1
	fi
	awk -v begin="$begin" -v end="$end" -v file="$2" '
	$0 == begin { print; while ((getline line < file) > 0) print line; skip = 1; next }
	$0 == end { skip = 0 }
	!skip' "$doc" > "$doc.new" && mv "$doc.new" "$doc"
	echo "regenerated $doc's $1 block; review it with git diff"
}
