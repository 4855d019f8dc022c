/* HTTPS calls over libcurl (the only file that talks to it): TLS 1.3, our own trust anchor, the
 * peer's DNS name checked by OpenSSL, bounded responses, short error texts. */
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "https-client.h"
#include "macro.h"

#define DEFAULT_TIMEOUT_MS 30000L
#define DEFAULT_MAX_RESPONSE (16u * 1024u * 1024u)

DEFINE_TRIVIAL_CLEANUP_FUNC(CURLM *, curl_multi_cleanup);

/* The TLS material of many calls, parsed once: curl would read the files and parse the PEM
 * again for each connection (a context per connection), which costs more than the handshake's
 * own crypto. Installed into each connection's context by on_ssl_ctx(); reference-counted. */
typedef struct tls_material {
        X509_STORE *store;      /* the trust anchor(s) of ca_pem */
        X509 *cert;             /* cert_file's first certificate, */
        STACK_OF(X509) *chain;  /* the ones after it, */
        EVP_PKEY *key;          /* and key_file's key */
} tls_material;

/* One call in flight: the curl handle and what its callbacks fill. */
typedef struct transfer {
        https_call *call;
        const tls_material *material; /* or NULL: curl reads the CA, certificate and key itself */
        CURL *curl;
        struct curl_slist *headers;
        char *data;
        size_t size, alloc, max;
        bool too_big;
        char errbuf[CURL_ERROR_SIZE];
        int alert;              /* fatal TLS alert the server sent, -1 for none */
        bool insecure;
        struct timespec start;
} transfer;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void curl_init(void) {
        /* CURLOPT_NOSIGNAL (needed with threads) also stops curl from guarding its writes:
         * a server that hangs up must fail the call, not kill the process. */
        signal(SIGPIPE, SIG_IGN);
        curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

void https_call_done(https_call *c) {
        if (!c)
                return;
        free(c->response);
        free(c->error);
        c->response = NULL;
        c->error = NULL;
        c->response_size = 0;
        c->status = 0;
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata) {
        transfer *t = userdata;
        size_t n = size * nmemb;

        /* Refuse while receiving: a hostile server cannot make us buffer more than max. */
        if (n > t->max - t->size) {
                t->too_big = true;
                return 0; /* CURLE_WRITE_ERROR */
        }
        if (t->size + n + 1 > t->alloc) {
                size_t a = t->alloc ? t->alloc : 4096;

                while (a < t->size + n + 1)
                        a *= 2;
                t->data = xrealloc(t->data, a);
                t->alloc = a;
        }
        memcpy(t->data + t->size, ptr, n);
        t->size += n;
        t->data[t->size] = '\0';
        return n;
}

/* A server refusing us says why only in its alert; curl's text is about the broken pipe. */
static void on_ssl_info(const SSL *ssl, int where, int ret) {
        transfer *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));

        if (t && (where & SSL_CB_ALERT) && (where & SSL_CB_READ) && streq(SSL_alert_type_string(ret), "F"))
                t->alert = ret & 0xff;
}

/* curl's own name check compares with the URL's host, an IP address here; OpenSSL checks the
 * name we expect instead, during the handshake, so a wrong name fails it. curl makes a context
 * per connection, and connections are never reused (transfer_new()). */
static CURLcode on_ssl_ctx(CURL *curl, void *ssl_ctx, void *userdata) {
        X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ssl_ctx);
        transfer *t = userdata;

        (void) curl;
        if (SSL_CTX_set_min_proto_version(ssl_ctx, TLS1_3_VERSION) != 1)
                return CURLE_SSL_CIPHER;
        SSL_CTX_set_app_data(ssl_ctx, t);
        SSL_CTX_set_info_callback(ssl_ctx, on_ssl_info);
        if (t->material) {
                const tls_material *m = t->material;

                SSL_CTX_set1_cert_store(ssl_ctx, m->store);
                if (m->cert && (SSL_CTX_use_certificate(ssl_ctx, m->cert) != 1 ||
                                (m->chain && SSL_CTX_set1_chain(ssl_ctx, m->chain) != 1) ||
                                SSL_CTX_use_PrivateKey(ssl_ctx, m->key) != 1))
                        return CURLE_SSL_CERTPROBLEM;
        }
        if (t->insecure)
                return CURLE_OK;
        X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT);
        if (t->call->peer_name) {
                X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_WILDCARDS);
                if (X509_VERIFY_PARAM_set1_host(param, t->call->peer_name, 0) != 1)
                        return CURLE_OUT_OF_MEMORY;
        }
        return CURLE_OK;
}

static double seconds_since(const struct timespec *start) {
        struct timespec now;

        clock_gettime(CLOCK_MONOTONIC, &now);
        return (double) (now.tv_sec - start->tv_sec) + (double) (now.tv_nsec - start->tv_nsec) / 1e9;
}

static void transfer_free(transfer *t) {
        if (!t)
                return;
        if (t->curl)
                curl_easy_cleanup(t->curl);
        curl_slist_free_all(t->headers);
        free(t->data);
        free(t);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(transfer *, transfer_free);

static void tls_material_free(tls_material *m) {
        if (!m)
                return;
        X509_STORE_free(m->store);
        X509_free(m->cert);
        sk_X509_pop_free(m->chain, X509_free);
        EVP_PKEY_free(m->key);
        free(m);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(tls_material *, tls_material_free);

/* Every certificate of a PEM text into store (at least one); -EBADMSG otherwise. */
static int store_add_pem(X509_STORE *store, const char *pem) {
        BIO *bio = BIO_new_mem_buf(pem, -1);
        X509 *x;
        int n = 0;

        if (!bio)
                return -ENOMEM;
        while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
                int ok = X509_STORE_add_cert(store, x);
                X509_free(x);
                if (ok != 1)
                        break;
                n++;
        }
        BIO_free(bio);
        ERR_clear_error();
        return n > 0 ? 0 : -EBADMSG;
}

/* The certificate (with its chain) and key files, as curl would read them (PEM). */
static int load_cert_key(tls_material *m, const char *cert_file, const char *key_file) {
        BIO *bio = BIO_new_file(cert_file, "r");
        X509 *x;
        int r = -EBADMSG;

        if (!bio)
                return -ENOENT;
        m->cert = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL);
        while (m->cert && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
                if (!m->chain)
                        m->chain = sk_X509_new_null();
                if (!m->chain || !sk_X509_push(m->chain, x)) {
                        X509_free(x);
                        goto out;
                }
        }
        BIO_free(bio);
        bio = BIO_new_file(key_file, "r");
        if (!bio || !m->cert)
                goto out;
        m->key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
        if (m->key && X509_check_private_key(m->cert, m->key) == 1)
                r = 0;
out:
        BIO_free(bio);
        ERR_clear_error();
        return r;
}

/* NULL when anything cannot be read or parsed: the calls then go the per-connection way, and
 * fail with curl's own message as before. */
static tls_material *tls_material_new(const https_client_tls *tls) {
        _cleanup_(tls_material_freep) tls_material *m = NULL;

        if (tls->insecure || !tls->ca_pem)
                return NULL;
        m = xcalloc(1, sizeof(tls_material));
        m->store = X509_STORE_new();
        /* The flags curl sets on the store it would fill. */
        if (!m->store || X509_STORE_set_flags(m->store, X509_V_FLAG_TRUSTED_FIRST | X509_V_FLAG_PARTIAL_CHAIN) != 1 ||
            store_add_pem(m->store, tls->ca_pem) < 0)
                return NULL;
        if (tls->cert_file && load_cert_key(m, tls->cert_file, tls->key_file ? tls->key_file : tls->cert_file) < 0)
                return NULL;
        return TAKE_PTR(m);
}

#define SETOPT(t, opt, val)                                             \
        do {                                                            \
                if (curl_easy_setopt((t)->curl, opt, val) != CURLE_OK)  \
                        goto fail;                                      \
        } while (0)

static int transfer_new(const https_client_tls *tls, const tls_material *material, https_call *c, transfer **ret) {
        _cleanup_(transfer_freep) transfer *t = NULL;
        long timeout = c->timeout_ms > 0 ? c->timeout_ms : DEFAULT_TIMEOUT_MS;
        bool post = streq_ptr(c->method, "POST");

        https_call_done(c);
        pthread_once(&curl_once, curl_init);
        if (curl_init_result != CURLE_OK) {
                c->error = xasprintf("cannot initialise libcurl: %s", curl_easy_strerror(curl_init_result));
                return -EIO;
        }
        if (!tls->insecure && !tls->ca_pem) {
                c->error = xstrdup("no CA certificate to verify the server against");
                return -EINVAL;
        }
        if (!c->url || !c->method) {
                c->error = xstrdup("no URL or method");
                return -EINVAL;
        }

        t = xcalloc(1, sizeof(transfer));
        t->call = c;
        t->material = material;
        t->alert = -1;
        t->insecure = tls->insecure;
        t->max = c->max_response > 0 ? c->max_response : DEFAULT_MAX_RESPONSE;
        clock_gettime(CLOCK_MONOTONIC, &t->start);
        t->curl = curl_easy_init();
        if (!t->curl) {
                c->error = xstrdup("cannot create a libcurl handle");
                return -ENOMEM;
        }

        SETOPT(t, CURLOPT_ERRORBUFFER, t->errbuf);
        SETOPT(t, CURLOPT_URL, c->url);
        SETOPT(t, CURLOPT_PROTOCOLS_STR, "https");
        SETOPT(t, CURLOPT_NOSIGNAL, 1L);
        /* The environment's proxy settings would route our mTLS through someone else. */
        SETOPT(t, CURLOPT_PROXY, "");
        SETOPT(t, CURLOPT_FOLLOWLOCATION, 0L);
        SETOPT(t, CURLOPT_TIMEOUT_MS, timeout);
        SETOPT(t, CURLOPT_CONNECTTIMEOUT_MS, timeout);
        SETOPT(t, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) t->max);
        SETOPT(t, CURLOPT_WRITEFUNCTION, on_data);
        SETOPT(t, CURLOPT_WRITEDATA, t);
        SETOPT(t, CURLOPT_SSLVERSION, (long) CURL_SSLVERSION_TLSv1_3);
        /* A connection or session made for one peer name must not serve a call expecting
         * another: our name check happens in the handshake, which reuse would skip. */
        SETOPT(t, CURLOPT_FORBID_REUSE, 1L);
        SETOPT(t, CURLOPT_SSL_SESSIONID_CACHE, 0L);

        if (tls->insecure) {
                SETOPT(t, CURLOPT_SSL_VERIFYPEER, 0L);
                SETOPT(t, CURLOPT_SSL_VERIFYHOST, 0L);
        } else if (material) {
                /* on_ssl_ctx() installs the parsed CA, certificate and key: curl reads none. */
                SETOPT(t, CURLOPT_SSL_VERIFYPEER, 1L);
                SETOPT(t, CURLOPT_SSL_VERIFYHOST, 0L);
                SETOPT(t, CURLOPT_CAINFO, NULL);
                SETOPT(t, CURLOPT_CAPATH, NULL);
        } else {
                struct curl_blob ca = {
                        .data = (void *) tls->ca_pem,
                        .len = strlen(tls->ca_pem),
                        .flags = CURL_BLOB_COPY,
                };

                SETOPT(t, CURLOPT_SSL_VERIFYPEER, 1L);
                SETOPT(t, CURLOPT_SSL_VERIFYHOST, 0L);
                SETOPT(t, CURLOPT_CAINFO_BLOB, &ca);
                SETOPT(t, CURLOPT_CAPATH, NULL);
        }
        SETOPT(t, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
        SETOPT(t, CURLOPT_SSL_CTX_DATA, t);
        if (tls->cert_file && !material) {
                SETOPT(t, CURLOPT_SSLCERT, tls->cert_file);
                SETOPT(t, CURLOPT_SSLCERTTYPE, "PEM");
                SETOPT(t, CURLOPT_SSLKEY, tls->key_file ? tls->key_file : tls->cert_file);
                SETOPT(t, CURLOPT_SSLKEYTYPE, "PEM");
        }

        t->headers = curl_slist_append(t->headers, "Accept: application/json");
        /* No "100 Continue" round trip: the server decides on the whole request. */
        t->headers = curl_slist_append(t->headers, "Expect:");
        if (c->body || post)
                t->headers = curl_slist_append(t->headers, "Content-Type: application/json");
        if (!t->headers)
                goto fail;
        SETOPT(t, CURLOPT_HTTPHEADER, t->headers);

        if (post) {
                SETOPT(t, CURLOPT_POST, 1L);
                SETOPT(t, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) (c->body ? c->body_size : 0));
                SETOPT(t, CURLOPT_POSTFIELDS, c->body ? c->body : "");
        } else if (streq(c->method, "GET"))
                SETOPT(t, CURLOPT_HTTPGET, 1L);
        else {
                SETOPT(t, CURLOPT_CUSTOMREQUEST, c->method);
                if (c->body) {
                        SETOPT(t, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) c->body_size);
                        SETOPT(t, CURLOPT_POSTFIELDS, c->body);
                }
        }

        *ret = TAKE_PTR(t);
        return 0;
fail:
        c->error = xstrdup("cannot set up the request (libcurl)");
        return -ENOMEM;
}

/* Move the outcome into the call and free the transfer. */
static int transfer_finish(transfer *t, CURLcode code) {
        https_call *c = t->call;
        long timeout = c->timeout_ms > 0 ? c->timeout_ms : DEFAULT_TIMEOUT_MS;
        int r = 0;

        c->seconds = seconds_since(&t->start);
        if (code == CURLE_OK) {
                curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &c->status);
                c->response = t->data ? TAKE_PTR(t->data) : xstrdup("");
                c->response_size = t->size;
        } else {
                if (t->too_big || code == CURLE_FILESIZE_EXCEEDED) {
                        c->error = xasprintf("response larger than %zu bytes", t->max);
                        r = -EFBIG;
                } else if (code == CURLE_OPERATION_TIMEDOUT) {
                        c->error = xasprintf("timed out after %.3g s", (double) timeout / 1000.0);
                        r = -ETIMEDOUT;
                } else if (code == CURLE_PEER_FAILED_VERIFICATION) {
                        long v = X509_V_OK;

                        /* OpenSSL's reason, and for a name mismatch the name we wanted. */
                        curl_easy_getinfo(t->curl, CURLINFO_SSL_VERIFYRESULT, &v);
                        if (v == X509_V_ERR_HOSTNAME_MISMATCH)
                                c->error = xasprintf("certificate verify failed: the server is not %s",
                                                     strempty(c->peer_name));
                        else if (v != X509_V_OK)
                                c->error = xasprintf("certificate verify failed: %s", X509_verify_cert_error_string(v));
                        else
                                c->error = xasprintf("certificate verify failed: %s", t->errbuf);
                        r = -EPERM;
                } else if (t->alert >= 0) {
                        /* OpenSSL 3.0 has no text for TLS 1.3's certificate_required (116). */
                        c->error = xasprintf("the server refused the TLS handshake: %s",
                                             t->alert == 116 ? "a client certificate is required"
                                                             : SSL_alert_desc_string_long(t->alert));
                        r = -EPERM;
                } else {
                        c->error = xstrdup(t->errbuf[0] ? t->errbuf : curl_easy_strerror(code));
                        r = code == CURLE_COULDNT_CONNECT ? -ECONNREFUSED : -EIO;
                }
                c->status = 0;
        }
        transfer_free(t);
        return r;
}

int https_perform(const https_client_tls *tls, https_call *c) {
        transfer *t = NULL;
        int r;

        r = transfer_new(tls, NULL, c, &t);
        if (r < 0)
                return r;
        return transfer_finish(t, curl_easy_perform(t->curl));
}

/* Finish every transfer still in the multi handle with code (on a failure of the multi
 * machinery itself: each call gets an error rather than a leak). */
static void abort_active(CURLM *multi, transfer **active, size_t n, CURLcode code,
                         void (*done)(https_call *c, void *userdata), void *userdata) {
        for (size_t i = 0; i < n; i++) {
                https_call *c;

                if (!active[i])
                        continue;
                c = active[i]->call;
                curl_multi_remove_handle(multi, active[i]->curl);
                transfer_finish(TAKE_PTR(active[i]), code);
                if (done)
                        done(c, userdata);
        }
}

int https_perform_many(const https_client_tls *tls, https_call *calls, size_t n, size_t max_parallel,
                       void (*done)(https_call *c, void *userdata), void *userdata) {
        _cleanup_(curl_multi_cleanupp) CURLM *multi = NULL;
        _cleanup_(tls_material_freep) tls_material *material = NULL;
        _cleanup_free_ transfer **active = NULL; /* by index of the call */
        size_t next = 0, running = 0;

        if (max_parallel == 0)
                max_parallel = 1;
        pthread_once(&curl_once, curl_init);
        multi = curl_multi_init();
        if (!multi)
                return -ENOMEM;
        active = xcalloc(n ? n : 1, sizeof(transfer *));
        material = tls_material_new(tls);

        while (next < n || running > 0) {
                CURLMsg *msg;
                int still, left;

                /* Top up to max_parallel; a call that cannot even start is finished at once. */
                while (next < n && running < max_parallel) {
                        size_t i = next++;
                        https_call *c = &calls[i];
                        transfer *t = NULL;

                        if (transfer_new(tls, material, c, &t) < 0) {
                                if (done)
                                        done(c, userdata);
                                continue;
                        }
                        curl_easy_setopt(t->curl, CURLOPT_PRIVATE, (void *) (uintptr_t) i);
                        if (curl_multi_add_handle(multi, t->curl) != CURLM_OK) {
                                transfer_finish(t, CURLE_FAILED_INIT);
                                if (done)
                                        done(c, userdata);
                                continue;
                        }
                        active[i] = t;
                        running++;
                }
                if (running == 0)
                        continue;

                if (curl_multi_perform(multi, &still) != CURLM_OK)
                        goto fail;
                while ((msg = curl_multi_info_read(multi, &left))) {
                        CURLcode result = msg->data.result;
                        uintptr_t i = 0;
                        transfer *t;

                        if (msg->msg != CURLMSG_DONE)
                                continue;
                        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &i);
                        t = TAKE_PTR(active[i]);
                        curl_multi_remove_handle(multi, t->curl);
                        transfer_finish(t, result);
                        running--;
                        if (done)
                                done(&calls[i], userdata);
                }
                if (running > 0 && curl_multi_poll(multi, NULL, 0, 1000, NULL) != CURLM_OK)
                        goto fail;
        }
        return 0;
fail:
        abort_active(multi, active, n, CURLE_FAILED_INIT, done, userdata);
        /* The calls never started still get their callback, each with an error. */
        for (; next < n; next++) {
                https_call_done(&calls[next]);
                calls[next].error = xstrdup("not attempted: libcurl's multi interface failed");
                if (done)
                        done(&calls[next], userdata);
        }
        return -EIO;
}
