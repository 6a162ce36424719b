/* The SFU's fan-out loop in C (see sfu/fanout.py for the Python side).
 *
 * One call sends one pushed packet, or one encoded frame, to every target of
 * a stream: per target and packet, copy into a scratch buffer, rewrite the
 * header (payload type, sequence number and timestamp with the target's
 * offsets, SSRC, transport-cc id and sequence number), record the send time
 * and size in the target's transport-cc ring, protect (SRTP). The
 * protected packets wait in the scratch buffer as messages; consecutive
 * targets on one socket go out in one sendmmsg, a target's packets of one
 * frame as UDP GSO messages when their sizes allow.
 *
 * Each target's packets are protected by its downtrack's vcs_out (sfu/_srtp_out.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "_fanout.h"

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103 /* linux/udp.h */
#endif

#define VCS_HEADER_BYTES 20  /* RTP header and the transport-cc extension (sfu.transport_cc.HEADER_BYTES) */
#define VCS_MAX_PACKET 1900  /* larger packets are not forwarded (sfu.packet_stream) */
#define VCS_TRAILER 144      /* SRTP_MAX_TRAILER_LEN: tag and MKI */
#define VCS_MAX_SEGMENTS 64  /* the kernel's UDP_MAX_SEGMENTS */
#define VCS_GSO_MAX_BYTES 65000
#define VCS_SCRATCH (512 * 1024)
#define VCS_MAX_MESSAGES 1024 /* UIO_MAXIOV: sendmmsg's limit */

vcs_stats vcs_totals;

typedef struct {
    int fd;
    int count;
    size_t used;
    int errors;
    struct mmsghdr msgs[VCS_MAX_MESSAGES];
    struct iovec iovs[VCS_MAX_MESSAGES];
    union {
        char buf[CMSG_SPACE(sizeof(uint16_t))];
        struct cmsghdr align;
    } controls[VCS_MAX_MESSAGES];
    unsigned char scratch[VCS_SCRATCH];
} vcs_batch;

/* one per thread that sends (in the node: the event loop's) */
static __thread vcs_batch *batch_of_thread;

static vcs_batch *batch_get(void) {
    if (batch_of_thread == NULL)
        batch_of_thread = calloc(1, sizeof(vcs_batch));
    return batch_of_thread;
}

static void flush(vcs_batch *b) {
    int i = 0;
    while (i < b->count) {
        int sent = sendmmsg(b->fd, b->msgs + i, b->count - i, 0);
        vcs_totals.syscalls++;
        if (sent < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
                b->errors += b->count - i; /* the socket's buffer is full: the rest would fail the same way */
                break;
            }
            b->errors++; /* this message is dropped (say its peer is unreachable); the next ones still go */
            i++;
        } else {
            i += sent;
            vcs_totals.messages += (uint64_t)sent;
        }
    }
    b->count = 0;
    b->used = 0;
}

static void add_message(vcs_batch *b, const vcs_target *t, unsigned char *data, size_t len, uint16_t segment) {
    struct mmsghdr *m = &b->msgs[b->count];
    struct iovec *iov = &b->iovs[b->count];
    iov->iov_base = data;
    iov->iov_len = len;
    memset(&m->msg_hdr, 0, sizeof(m->msg_hdr));
    m->msg_hdr.msg_iov = iov;
    m->msg_hdr.msg_iovlen = 1;
    if (t->addrlen) {
        m->msg_hdr.msg_name = (void *)t->addr;
        m->msg_hdr.msg_namelen = t->addrlen;
    }
    if (segment) {
        char *control = b->controls[b->count].buf;
        m->msg_hdr.msg_control = control;
        m->msg_hdr.msg_controllen = CMSG_SPACE(sizeof(uint16_t));
        struct cmsghdr *c = CMSG_FIRSTHDR(&m->msg_hdr);
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        memcpy(CMSG_DATA(c), &segment, sizeof(uint16_t));
    }
    b->count++;
}

static inline void put16(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static inline void put32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Send `count` packets (`data`, lengths in `lengths`, one after another),
 * sequence numbers from `seq`, all with timestamp `ts`, the marker bit on
 * the last when `marker`, to each of `targets`. Returns the number of
 * failures (a target's packets not protected, a message not sent). */
int vcs_fanout(const vcs_target *targets, int ntargets, const char *data, const int *lengths, int count, uint32_t seq,
               uint32_t ts, int marker, double now) {
    vcs_batch *b = batch_get();
    if (b == NULL)
        return ntargets;
    size_t need = 0;
    for (int i = 0; i < count; i++) {
        if (lengths[i] < VCS_HEADER_BYTES || lengths[i] > VCS_MAX_PACKET)
            return ntargets;
        need += (size_t)lengths[i] + VCS_TRAILER;
    }
    if (count < 1 || count > VCS_MAX_MESSAGES || need > VCS_SCRATCH)
        return ntargets;
    b->errors = 0;
    b->count = 0;
    b->used = 0;
    b->fd = -1;
    int sizes[VCS_MAX_MESSAGES];
    for (int k = 0; k < ntargets; k++) {
        const vcs_target *t = &targets[k];
        if (b->count && (t->fd != b->fd || b->count + count > VCS_MAX_MESSAGES || b->used + need > VCS_SCRATCH))
            flush(b);
        b->fd = t->fd;
        unsigned char *start = b->scratch + b->used;
        unsigned char *dst = start;
        const unsigned char *src = (const unsigned char *)data;
        vcs_cc *cc = t->cc;
        uint32_t pt = t->pt & 0x7F;
        uint32_t out_ts = ts + t->ts_off;
        int ok = 1;
        for (int i = 0; i < count; i++) {
            int n = lengths[i];
            memcpy(dst, src, (size_t)n);
            src += n;
            uint16_t tw = cc->next;
            cc->next = (uint16_t)(tw + 1);
            cc->times[tw & (VCS_RING - 1)] = now;
            cc->sizes[tw & (VCS_RING - 1)] = (uint16_t)n;
            dst[1] = (unsigned char)(((marker && i == count - 1) ? 0x80 : 0) | pt);
            put16(dst + 2, seq + (uint32_t)i + t->seq_off);
            put32(dst + 4, out_ts);
            put32(dst + 8, t->ssrc);
            put16(dst + 12, 0xBEDE);
            put16(dst + 14, 1);
            dst[16] = (unsigned char)cc->ext;
            put16(dst + 17, cc->ext ? tw : 0);
            int len = n;
            if (vcs_protect(t->out, (char *)dst, &len) != 0) {
                ok = 0;
                break;
            }
            sizes[i] = len;
            dst += len;
        }
        if (!ok) {
            b->errors++;
            continue; /* nothing of this target queued; its scratch is reused */
        }
        b->used += (size_t)(dst - start);
        int segment = sizes[0];
        int uniform = t->gso && count > 1 && count <= VCS_MAX_SEGMENTS;
        for (int i = 1; uniform && i < count; i++)
            uniform = i < count - 1 ? sizes[i] == segment : sizes[i] <= segment;
        unsigned char *p = start;
        if (uniform) {
            int per_message = VCS_GSO_MAX_BYTES / segment;
            for (int i = 0; i < count; i += per_message) {
                size_t len = 0;
                for (int j = i; j < count && j < i + per_message; j++)
                    len += (size_t)sizes[j];
                add_message(b, t, p, len, len > (size_t)segment ? (uint16_t)segment : 0);
                p += len;
            }
        } else {
            for (int i = 0; i < count; i++) {
                add_message(b, t, p, (size_t)sizes[i], 0);
                p += sizes[i];
            }
        }
    }
    if (b->count)
        flush(b);
    return b->errors;
}
