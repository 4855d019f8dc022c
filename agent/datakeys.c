/* The databases' data keys (datakeys.h): asked for as this host, each opened with host.key under
 * its own database's name. Keys live only in the returned array, which datakeys_done() wipes. */
#include "controller-client.h"
#include "datakeys.h"
#include "enroll.h"
#include "jsondec.h"
#include "macro.h"
#include "wire.h"
#include "x509.h"

#define DATAKEYS_TIMEOUT_MS 10000 /* the controller answers in milliseconds; the worker waits meanwhile */

void datakeys_done(datakeys *k) {
        for (size_t i = 0; i < k->n; i++) {
                explicit_bzero(k->keys[i].key, sizeof(k->keys[i].key));
                free(k->keys[i].database);
        }
        free(k->keys);
        *k = (datakeys) {};
}

const datakey *datakeys_find(const datakeys *k, const char *database) {
        for (size_t i = 0; i < k->n; i++)
                if (streq(k->keys[i].database, database))
                        return &k->keys[i];
        return NULL;
}

static int cmp_string(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

static int read_host_key(const agent_config *cfg, EVP_PKEY **ret, char **ret_error) {
        _cleanup_free_ char *path = enrollment_file(cfg, ENROLL_HOST_KEY), *err = NULL;
        int r;

        r = x509_key_from_file(path, ret, &err);
        if (r == -EBADMSG)
                *ret_error = xasprintf("the host key %s is not usable (%s); enroll again with 'agentctl enroll --force'",
                                       path, err);
        else if (r < 0)
                *ret_error = TAKE_PTR(err);
        return r;
}

/* The answer to this request and no other: for this host, exactly the databases asked for, in
 * the order asked (sorted). A controller that answers anything else is confused or not ours. */
static int check_answer(const wire_data_keys_response *m, const controller_client *c, const char *const *sorted,
                        size_t n, char **ret_error) {
        const char *url = c->enrollment.controller_url;

        if (!streq(m->host, c->enrollment.host)) {
                *ret_error = xasprintf("the controller at %s answered with the data keys of host '%s', not of this host '%s'",
                                       url, m->host, c->enrollment.host);
                return -EPROTO;
        }
        for (size_t i = 0; i < n || i < m->n_keys; i++) {
                if (i >= m->n_keys)
                        *ret_error = xasprintf("the controller at %s sent no data key for database '%s'", url, sorted[i]);
                else if (i >= n)
                        *ret_error = xasprintf("the controller at %s sent a data key for database '%s', which was not "
                                               "asked for",
                                               url, m->keys[i].database);
                else if (!streq(m->keys[i].database, sorted[i]))
                        *ret_error = xasprintf("the controller at %s sent the data key of database '%s' where that of "
                                               "'%s' was due",
                                               url, m->keys[i].database, sorted[i]);
                else
                        continue;
                return -EPROTO;
        }
        return 0;
}

int datakeys_fetch(const agent_config *cfg, const char *const *databases, size_t n, datakeys *ret, char **ret_error) {
        _cleanup_(controller_client_done) controller_client c = {};
        _cleanup_(wire_data_keys_response_done) wire_data_keys_response m = {};
        _cleanup_(datakeys_done) datakeys k = {};
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(json_object_putp) json_object *body = NULL;
        _cleanup_free_ const char **sorted = NULL;
        _cleanup_free_ char *err = NULL, *response = NULL;
        const char *text;
        size_t size = 0;
        int r;

        if (n == 0 || n > WIRE_MAX_DATA_KEYS) {
                *ret_error = xasprintf("data keys are asked for 1 to %d databases at once, not %zu", WIRE_MAX_DATA_KEYS, n);
                return -EINVAL;
        }
        sorted = xcalloc(n, sizeof(*sorted));
        memcpy(sorted, databases, n * sizeof(*sorted));
        qsort_safe(sorted, n, sizeof(*sorted), cmp_string);
        for (size_t i = 1; i < n; i++)
                if (streq(sorted[i - 1], sorted[i])) {
                        *ret_error = xasprintf("database '%s' is asked for twice", sorted[i]);
                        return -EINVAL;
                }

        r = controller_client_open(cfg, &c, &err);
        if (r == -ENOENT) {
                *ret_error = xstrdup("encryption keys come from the controller: enroll this host first (agentctl "
                                     "enroll), or set encryption = none");
                return r;
        }
        if (r < 0) {
                *ret_error = TAKE_PTR(err);
                return r;
        }
        /* The key first: without it no answer could be opened, so the controller is not asked. */
        r = read_host_key(cfg, &key, ret_error);
        if (r < 0)
                return r;

        body = wire_data_keys_request_to_json(&(wire_data_keys_request) {
                .host = c.enrollment.host,
                .databases = (char **) sorted,
                .n_databases = n,
        });
        text = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        r = controller_post(&c, "data keys request", "/v1/data-keys", text, strlen(text), DATAKEYS_TIMEOUT_MS, &response,
                            &size, ret_error);
        if (r < 0)
                return r;
        r = wire_data_keys_response_decode(strempty(response), size, &m, &err);
        if (r < 0) {
                *ret_error = xasprintf("the controller at %s answered the data keys request with a malformed answer: %s",
                                       c.enrollment.controller_url, err);
                return -EPROTO;
        }
        r = check_answer(&m, &c, sorted, n, ret_error);
        if (r < 0)
                return r;

        k.keys = xcalloc(n, sizeof(datakey));
        for (size_t i = 0; i < n; i++) {
                const char **at = bsearch(&databases[i], sorted, n, sizeof(*sorted), cmp_string);
                const wire_data_key *w = &m.keys[at - sorted];

                k.keys[i].database = xstrdup(databases[i]);
                k.n = i + 1;
                r = keywrap_open(key, databases[i], w->wrapped_key, k.keys[i].key, &err);
                if (r < 0) {
                        /* keywrap's messages never quote the wrapped key; neither does this one. */
                        *ret_error = xasprintf("database '%s': the data key from the controller at %s: %s", databases[i],
                                               c.enrollment.controller_url, err);
                        /* Not a wrapped key at all is as much a refusal as one that does not open. */
                        return r == -EBADMSG ? -EKEYREJECTED : r;
                }
        }
        *ret = k;
        k = (datakeys) {};
        return 0;
}
