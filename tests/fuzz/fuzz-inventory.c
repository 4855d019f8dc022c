/* libFuzzer target for the static host inventory (--hosts): parse, then use what was accepted
 * the way placement does (look every host up by name, turn addresses into CIDRs). */
#include <stdint.h>
#include <stdio.h>

#include "diag.h"
#include "inventory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        inventory inv;
        diag_list d;

        if (size > INVENTORY_MAX_SIZE)
                return 0;
        inventory_init(&inv);
        diag_list_init(&d);
        if (inventory_load_buffer(&inv, "hosts.yaml", (const char *) data, size, &d) >= 0) {
                for (size_t i = 0; i < inv.n; i++) {
                        char cidr[64];

                        if (inventory_find(&inv, inv.hosts[i].name) != (long) i)
                                abort(); /* names are unique and sorted once loaded */
                        for (size_t a = 0; a < inv.hosts[i].n_addresses; a++)
                                address_to_cidr(inv.hosts[i].addresses[a], cidr, sizeof(cidr));
                }
        }
        diag_sort(&d);
        inventory_done(&inv);
        diag_list_done(&d);
        return 0;
}
