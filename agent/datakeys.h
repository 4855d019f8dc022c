/* The databases' data keys, from the controller: POST /v1/data-keys over mutual TLS with the host
 * certificate, each key wrapped to this host's enrolled key (keywrap.h) and opened here with
 * host.key. Keys are never written anywhere by this file: the caller hands them to the kernel
 * (fscrypt keyring, dm-crypt) and wipes them with datakeys_done(). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "keywrap.h"

typedef struct datakey {
        char *database;                      /* "org/ou/env/project/db": the keywrap context */
        uint8_t key[KEYWRAP_KEY_SIZE];
} datakey;

typedef struct datakeys {
        datakey *keys;                       /* in the order asked for */
        size_t n;
} datakeys;

/* Ask the enrolled controller for the keys of databases (n distinct "org/ou/env/project/db",
 * any order) and open each with host.key. All or nothing: on error nothing is returned.
 *   -ENOENT       this host is not enrolled ("encryption keys come from the controller: enroll
 *                 this host first (agentctl enroll), or set encryption = none")
 *   -EHOSTUNREACH the controller did not answer (transport error, timeout): the message names
 *                 the controller's URL and the cause
 *   -EPROTO       the controller refused (its status and {"error"} message) or answered something
 *                 that is not the answer to this request (another host, other databases)
 *   -EKEYREJECTED a wrapped key does not open with this host's key under its database's context
 *                 (tampered with, sealed to another host or for another database)
 * Messages never contain a key or a wrapped key. */
int datakeys_fetch(const agent_config *cfg, const char *const *databases, size_t n, datakeys *ret, char **ret_error);

/* The key of database, or NULL. */
const datakey *datakeys_find(const datakeys *k, const char *database);

/* Wipe (explicit_bzero) and free. */
void datakeys_done(datakeys *k);
