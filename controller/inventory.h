/* Hosts the controller can place on: from a static inventory file (--hosts) and the hosts that
 * enrolled (state store), in one structure. */
#pragma once

#include <stdint.h>

#include "arena.h"
#include "diag.h"
#include "document.h"
#include "manifest.h"
#include "yaml-tree.h"

#define INVENTORY_MAX_SIZE (64u * 1024u * 1024u)

typedef struct inv_host {
        const char *name;
        const char **addresses;   /* textual IPv4/IPv6 addresses, as given */
        size_t n_addresses;
        doc_host_role role;
        int cpus;
        uint64_t memory_bytes;
        const char **label_keys, **label_values;
        size_t n_labels;
        const char *environment;  /* the 'environment' label, or NULL */
        mloc loc;
} inv_host;

typedef struct inventory {
        arena arena;                  /* every string of the hosts: the parse tree is freed after loading */
        strpool labels;               /* label keys and values, interned: a few, repeated on every host */
        inv_host *hosts;              /* sorted by name */
        size_t n;
} inventory;

void inventory_init(inventory *inv);
void inventory_done(inventory *inv);
/* Load an inventory file; errors name path:line:col. Returns -EBADMSG when anything was wrong,
 * -errno when the file cannot be read. */
int inventory_load(inventory *inv, const char *path, diag_list *diags);
int inventory_load_buffer(inventory *inv, const char *path, const char *data, size_t size, diag_list *diags);
long inventory_find(const inventory *inv, const char *name);
/* Add a host (an enrolled one, from the state store) at its place in name order. Its strings are
 * copied into the inventory (labels interned; environment is the 'environment' label's value,
 * whatever h->environment says). -EEXIST, nothing added, when the name is there already. */
int inventory_add_host(inventory *inv, const inv_host *h);
/* "10.0.0.1" -> "10.0.0.1/32", "fd00::1" -> "fd00::1/128" (into buf). */
void address_to_cidr(const char *addr, char *buf, size_t size);
