#!/bin/sh
# check-style: calls src/ must not make, in the .c files and the headers.
# Unbounded string functions (sprintf strcpy strcat gets strtok strncpy),
# unchecked number parsing (atoi atol), sleeping instead of waiting on the
# event loop (sleep usleep pause alarm), a shell (system popen), signal
# handlers and non-local jumps (signal setjmp longjmp sigsetjmp siglongjmp:
# signals come through signalfd in loop.c). Prints each hit with file and
# line; exits 1 if there is any.
cd "$(dirname "$0")/.." || exit 2
BANNED='sprintf|strcpy|strcat|strncpy|gets|strtok|atoi|atol|sleep|usleep|pause|alarm|system|popen|signal|setjmp|longjmp|sigsetjmp|siglongjmp'
if grep -nE "\\b($BANNED)\\(" src/*.c src/*.h; then
	echo "check-style: the calls above are not allowed in src/" >&2
	exit 1
fi
exit 0
