/* What sfu/_fanout.c shares with Python: read by the C source (#include) and, as
 * the declarations of the compiled module, by sfu/_fanout_build.py (cffi's cdef).
 * cdef reads plain declarations and integer #defines only: no other directive here. */

#define VCS_RING 8192 /* sfu.transport_cc.RING */

typedef struct {
    double times[VCS_RING];
    uint16_t sizes[VCS_RING];
    uint16_t next;
    uint16_t ext; /* the extension element's first byte; 0 writes padding */
    uint32_t reserved;
} vcs_cc;

typedef struct {
    int fd;
    int gso; /* UDP_SEGMENT may be used on fd */
    uint32_t pt;
    uint32_t seq_off;
    uint32_t ts_off;
    uint32_t ssrc;
    void *srtp;
    vcs_cc *cc;
    uint32_t addrlen; /* 0: fd is connected to the peer */
    unsigned char addr[28]; /* a sockaddr_in or sockaddr_in6 */
} vcs_target;

typedef struct {
    uint64_t syscalls; /* sendmmsg calls */
    uint64_t messages; /* messages (datagrams, or GSO batches of them) sent */
} vcs_stats;

/* process-wide; written by the thread that sends (the node's event loop) */
extern vcs_stats vcs_totals;

int vcs_fanout(uintptr_t protect_address, const vcs_target *targets, int ntargets, const char *data,
               const int *lengths, int count, uint32_t seq, uint32_t ts, int marker, double now);
