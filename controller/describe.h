/* `get database`: one Database manifest as declared, with a `computed` block — what the
 * controller made of it (host name, placement, address, CA) and what its host last reported. */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "compile.h"

typedef struct describe_options {
        const char *repo;         /* where the manifest's file is read again */
        const char *state_dir;    /* the CA, the enrolled hosts */
        const char *domain;       /* of database host names: the CA's unless --domain */
        const char *project;      /* "org/ou/env/project" or NULL */
        bool json;                /* else YAML */
} describe_options;

/* c: compiled read-only (compile_all without write_store), verifiers attached. Prints to out.
 * -ENOENT no such database, -ENOTUNIQ several (the message lists their projects), other -errno
 * when something cannot be read; *ret_error says which. */
int describe_database(compilation *c, const char *name, const describe_options *o, FILE *out, char **ret_error);
