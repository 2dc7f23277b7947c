/*
 * Preloaded under Debian's real Xen 4.17 `xl` so that `xl create -n CFG` (a dry run: parse the config,
 * print the domain xl would create as JSON) runs on a machine without a hypervisor or xenstored. Only
 * the calls that would reach the hypervisor or xenstore on that path are answered here; the parsing,
 * the checks and the JSON are xl's and libxl's own code. xl reaches every one of them through the PLT,
 * so the preload takes their place. Each was found needed by leaving it out (xl then crashes, or says
 * "cannot init xl context"). The shim calls nothing but libc.
 *
 * Built by scripts/xen/xl-offline.ts against the headers of Debian's libxen-dev.
 */
#include <stdlib.h>
#include <string.h>
#include <xenctrl.h>
#include <xenstore.h>
#include <libxl.h>

#define NCPUS 2
#define NNODES 1

/* Handles nobody looks into on the dry-run path: they are tested for NULL and closed again. */
static long fake_xc[64];
static long fake_xs[64];

/* libxl_ctx_alloc opens both; the real calls need /dev/xen/privcmd and xenstored. */
xc_interface *xc_interface_open(xentoollog_logger *logger, xentoollog_logger *dombuild_logger,
                                unsigned open_flags)
{
    (void)logger; (void)dombuild_logger; (void)open_flags;
    return (xc_interface *)fake_xc;
}
int xc_interface_close(xc_interface *xch) { (void)xch; return 0; }
struct xs_handle *xs_open(unsigned long flags) { (void)flags; return (struct xs_handle *)fake_xs; }
void xs_close(struct xs_handle *xsh) { (void)xsh; }

/* xl's start looks for dom0_mem= on the hypervisor's command line (autoballooning). */
static libxl_version_info version = {
    .xen_version_major = 4,
    .xen_version_minor = 17,
    .xen_version_extra = "",
    .compiler = "",
    .compile_by = "",
    .compile_domain = "",
    .compile_date = "",
    .capabilities = "xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64",
    .changeset = "",
    .virt_start = 0xffff800000000000ULL,
    .pagesize = 4096,
    .commandline = "",
    .build_id = "",
};
const libxl_version_info *libxl_get_version_info(libxl_ctx *ctx) { (void)ctx; return &version; }

/* The config parser asks for the host unconditionally: a host able to run PV, PVH and HVM guests
 * (HAP), with room for any guest a test asks for (16 GiB free). */
int libxl_get_physinfo(libxl_ctx *ctx, libxl_physinfo *p)
{
    (void)ctx;
    memset(p, 0, sizeof(*p));
    p->threads_per_core = 1;
    p->cores_per_socket = NCPUS;
    p->max_cpu_id = NCPUS - 1;
    p->nr_cpus = NCPUS;
    p->cpu_khz = 2000000;
    p->total_pages = 4ULL << 20;
    p->free_pages = 4ULL << 20;
    p->max_possible_mfn = (4ULL << 20) - 1;
    p->nr_nodes = NNODES;
    p->cap_hvm = p->cap_pv = p->cap_hap = p->cap_shadow = true;
    p->cap_gnttab_v1 = p->cap_gnttab_v2 = true;
    return 0;
}

/* The sizes of the vCPU and node bitmaps every config gets; online CPUs for vnuma=, the topology
 * for cpus="node:N" (the caller frees it: it must come from malloc). */
int libxl_get_max_cpus(libxl_ctx *ctx) { (void)ctx; return NCPUS; }
int libxl_get_max_nodes(libxl_ctx *ctx) { (void)ctx; return NNODES; }
int libxl_get_online_cpus(libxl_ctx *ctx) { (void)ctx; return NCPUS; }
libxl_cputopology *libxl_get_cpu_topology(libxl_ctx *ctx, int *nb_cpu_out)
{
    libxl_cputopology *t = calloc(NCPUS, sizeof(*t));
    (void)ctx;
    if (!t) return NULL;
    for (int i = 0; i < NCPUS; i++) {
        t[i].core = i;
        t[i].socket = 0;
        t[i].node = 0;
    }
    *nb_cpu_out = NCPUS;
    return t;
}
