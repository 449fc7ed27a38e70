#!/bin/sh
# AuthorizedKeysCommand for tests: waits the number of seconds in the file
# $1 (a slow LDAP or HTTP key lookup), then prints the keys in file $2.
# sshd runs it only from a root-owned path that no one else may write,
# which is why it lives in the repository and not in a test's temp dir.
sleep "$(cat "$1")"
cat "$2"
