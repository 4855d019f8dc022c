/* The agent's side of the LUKS2 helper (luks-helper.c): one request per connection to the helper's
 * socket (agent.conf luks-helper, default AGENT_LUKS_HELPER_DEFAULT), which systemd answers by
 * starting infrastream-luks@.service. */
#pragma once

#include "wire.h"

#define LUKS_CLIENT_TIMEOUT_SEC (15 * 60) /* Argon2id per keyslot added, mkfs of a large device */

/* Send req (its keys are wiped from our buffers after sending), wait for the answer. 0 and *ret;
 * else -errno and *ret_error: the helper's own message for a refusal (-EIO), or why it could not be
 * reached ("cannot reach the LUKS2 helper at PATH: ...", with what to check). */
int luks_client_call(const char *socket_path, const wire_luks_request *req, wire_luks_response *ret,
                     char **ret_error);
