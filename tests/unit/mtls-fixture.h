/* Mutual-TLS fixtures the unit tests share: a CA shaped like controller/ca.c's (a permitted DNS
 * subtree), identities issued from it as PEM files, and an https-server whose event loop runs in
 * a thread on 127.0.0.1. Failures are cmocka assertions. */
#pragma once

#include <pthread.h>
#include <stdbool.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "https-server.h"

typedef struct identity {
        char *cert, *key; /* files */
} identity;

/* A CA (issuer NULL: self-signed, permitted subtree domain) or a leaf for name with EKU
 * serverAuth + clientAuth, the shape controller/ca.c gives the mutual-TLS identities. */
X509 *fixture_make_cert(EVP_PKEY *key, const char *name, const char *domain, X509 *issuer, EVP_PKEY *issuer_key);
/* The certificate and/or the key (unencrypted) to path. */
void fixture_write_pem(const char *path, X509 *x, EVP_PKEY *k);
/* A new EC P-256 key and a leaf for name from ca, as <dir>/<tag>.crt and <dir>/<tag>.key. */
identity fixture_issue(const char *dir, const char *name, X509 *ca, EVP_PKEY *ca_key, const char *tag);
void identity_done(identity *id);
/* What every test of the transport needs once, from its setup: libevent's locks (the loop runs in
 * another thread) and no proxy from the environment redirecting the calls. */
void fixture_init(void);
/* rm -rf dir (without following links). */
void fixture_remove_tree(const char *dir);

typedef struct test_server {
        struct event_base *base;
        https_server *https;
        pthread_t thread;
        int port;
} test_server;

/* A server with id's certificate listening on 127.0.0.1 (a free port), client certificates
 * checked against ca_file. Add routes, then test_server_run() starts the loop's thread. */
void test_server_init(test_server *s, const identity *id, const char *ca_file, bool require_client_cert,
                      const https_limits *limits);
void test_server_run(test_server *s);
void test_server_stop(test_server *s);
/* "https://127.0.0.1:PORT<path>", malloc'd. */
char *test_server_url(const test_server *s, const char *path);
