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

/* How a downtrack's RTP is protected (sfu/_srtp_out.c): by its session's own
 * AES-GCM when gcm is set, else by libsrtp (srtp_protect, at the address in
 * vcs_srtp_protect, with the session's srtp_t). The rollover counter of each
 * SSRC it sends on (media, RTX) is kept here. */
#define VCS_OUT_SSRCS 2

typedef struct {
    uint32_t roc;
    uint16_t seq;  /* the highest sequence number sent */
    uint8_t started;
    uint8_t used;  /* this slot's SSRC is set */
} vcs_index;

typedef struct vcs_gcm vcs_gcm;

typedef struct {
    void *srtp;
    vcs_gcm *gcm;
    uint32_t ssrc[VCS_OUT_SSRCS];
    vcs_index index[VCS_OUT_SSRCS];
} vcs_out;

/* the addresses of the libcrypto functions sfu/_srtp_out.c calls (OpenSSL 3's EVP), set once */
typedef struct {
    uintptr_t ctx_new, ctx_free, ctx_ctrl, encrypt_init, encrypt_update, encrypt_final;
    uintptr_t aes_128_ctr, aes_256_ctr, aes_128_gcm, aes_256_gcm;
} vcs_crypto_table;
extern vcs_crypto_table vcs_crypto;
/* the address of the srtp_protect pylibsrtp loaded, set once */
extern uintptr_t vcs_srtp_protect;

/* a session's AES-GCM from the DTLS-SRTP master key (16 or 32 bytes) and 12-byte salt; NULL on failure */
vcs_gcm *vcs_gcm_new(const unsigned char *master_key, int key_len, const unsigned char *master_salt);
void vcs_gcm_free(vcs_gcm *g);
/* as srtp_protect: 0 when done, *len grown by the tag; the buffer has room for it */
int vcs_protect(vcs_out *o, char *packet, int *len);

typedef struct {
    int fd;
    int gso; /* UDP_SEGMENT may be used on fd */
    uint32_t pt;
    uint32_t seq_off;
    uint32_t ts_off;
    uint32_t ssrc;
    vcs_out *out;
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

int vcs_fanout(const vcs_target *targets, int ntargets, const char *data,
               const int *lengths, int count, uint32_t seq, uint32_t ts, int marker, double now);
