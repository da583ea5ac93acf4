#!/bin/sh
# All process libraries link into one executable: a global symbol defined in
# two of them is silently resolved to one definition (the first archive wins),
# and the other library then runs code written for a different layout. Fail on
# any global symbol defined by more than one library.
set -eu
dups=$(for lib in "$@"; do
	nm -g --defined-only "$lib" | awk -v l="$(basename "$lib")" 'NF == 3 { print $3, l }'
done | sort -u | awk '{ n[$1]++; w[$1] = w[$1] " " $2 } END { for (s in n) if (n[s] > 1) print s ":" w[s] }')
if [ -n "$dups" ]; then
	echo "global symbols defined in more than one library:"
	echo "$dups"
	exit 1
fi
echo "no duplicate global symbols in $# libraries"
