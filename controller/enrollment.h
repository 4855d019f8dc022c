/* The enrollment transaction: a host presents a token, its certificate request and its facts;
 * the controller checks the token, issues the host's identity <host>.hosts.<domain>, marks the
 * token used and records the host — all or nothing. No I/O besides the store: serve.c does HTTP. */
#pragma once

#include <stdint.h>

#include "ca.h"
#include "store.h"
#include "wire.h"

/* Enroll the host req describes. On success: 0, *ret filled (the host's certificate, the CA, the
 * signing key PEM given here, the controller's name) and *ret_replaced (optional) true when a host
 * of that name was enrolled before (agentctl enroll --force with a token made by 'token create
 * --replace' for it). On failure: -errno, *ret_status the HTTP status to answer with and
 * *ret_error a message that names no secret; the token stays unused, as with every refusal:
 *   400  facts or CSR invalid (name not a DNS label, address not an IP, endpoint not ADDR:PORT,
 *        CSR that does not verify), or the token not of the token's form
 *   401  unknown token, or wrong secret
 *   403  a token made to re-enroll one host (--replace), presented for another name
 *   409  the name is enrolled already and the token was not made to replace it
 *   410  token used or expired
 *   500  the state store failed
 * A facts endpoint on an unspecified address ("0.0.0.0:7443", "[::]:7443": the agent listens on
 * every address) is recorded with the host's first address instead: the controller pushes there. */
int enroll_host(store *s, const ca *c, const char *signing_key_pem, const wire_enroll_request *req, int64_t now,
                wire_enroll_response *ret, bool *ret_replaced, int *ret_status, char **ret_error);
