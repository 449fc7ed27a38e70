/*
 * libFuzzer target: SSH key files as `tunnels check`, server-setup and
 * the daemon read them: a private key file inspected without decrypting
 * it (OpenSSH and PEM formats), the same text as a public key line
 * (host_key:), and as a passphrase_file.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "keyfile.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* One input: the bytes of a key file. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct keyfile_info	 ki;
	enum keyfile_type	 type;
	const char		*path;
	char			*cause = NULL, *line, *pass;

	path = fuzz_file(data, size);
	memset(&ki, 0, sizeof ki);
	if (keyfile_inspect(path, &ki, &cause) == 0) {
		if (cause != NULL || keyfile_type_name(ki.type) == NULL)
			abort();
		/* The public half found inside must check as a public key. */
		if (ki.public_line != NULL &&
		    keyfile_check_public(ki.public_line, NULL, &cause) == -1)
			free(cause);
		keyfile_info_clear(&ki);
	} else
		free(cause);
	cause = NULL;
	line = fuzz_str(data, size);
	if (keyfile_check_public(line, &type, &cause) == -1)
		free(cause);
	free(line);
	cause = NULL;
	if ((pass = keyfile_read_passphrase(path, &cause)) != NULL)
		free(pass);
	else
		free(cause);
	return 0;
}
