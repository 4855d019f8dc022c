/* The floor for the agent's idle RSS: an empty process that links the libraries the agent links
 * (OpenSSL 3, libpq, libcurl, libevent, libsystemd, libnftnl/libmnl, json-c) and touches each the
 * way an idle agent must — a TLS 1.3 server context with a certificate store, curl's global
 * init, an event base, libpq loaded — then prints its VmRSS in KiB. bench/fanout builds and runs
 * it beside the agents. */
#include <curl/curl.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <libmnl/libmnl.h>
#include <libnftnl/table.h>
#include <libpq-fe.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

int main(void) {
        SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
        struct event_base *base = event_base_new();
        struct nftnl_table *t = nftnl_table_alloc();
        json_object *o = json_object_new_object();
        char line[256];
        FILE *f;

        if (!ctx || !base || !t || !o)
                return 1;
        SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
        X509_STORE_set_flags(SSL_CTX_get_cert_store(ctx), X509_V_FLAG_X509_STRICT);
        curl_global_init(CURL_GLOBAL_DEFAULT);
        (void) PQlibVersion();
        (void) sd_booted();
        (void) mnl_socket_open;
        f = fopen("/proc/self/status", "re");
        while (f && fgets(line, sizeof(line), f)) {
                unsigned long kib;
                if (sscanf(line, "VmRSS: %lu kB", &kib) == 1)
                        printf("%lu\n", kib);
        }
        return 0;
}
