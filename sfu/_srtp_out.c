/* SRTP for what the node sends: AEAD AES-GCM (RFC 7714) with OpenSSL, other
 * profiles through libsrtp.
 *
 * libsrtp protects a packet in about twice the time its AES-GCM takes: it
 * finds the SSRC's stream in a list, shifts a 1,024-bit replay window and
 * counts the key's uses on every call. A downtrack here knows its SSRCs, so
 * it keeps their rollover counters itself and calls the cipher directly:
 * one keyed EVP context per subscriber's session, a new IV per packet.
 *
 * The session keys are derived from the DTLS-SRTP master key and salt as
 * libsrtp derives them (RFC 3711 4.3 with RFC 7714's 12-byte salt, padded);
 * tests/sfu/test_srtp_out.py checks the output against libsrtp's byte for
 * byte, across a sequence number wrap.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_fanout.h"

/* OpenSSL's EVP, called through the addresses sfu/srtp_out.py puts in vcs_crypto
 * (the libcrypto libsrtp itself uses): only these calls, on opaque pointers. */
#define EVP_CTRL_AEAD_SET_IVLEN 0x9
#define EVP_CTRL_AEAD_GET_TAG 0x10
typedef void EVP_CIPHER_CTX;
typedef void EVP_CIPHER;
#define CALL(name, type) ((type)vcs_crypto.name)
#define EVP_CIPHER_CTX_new CALL(ctx_new, EVP_CIPHER_CTX * (*)(void))
#define EVP_CIPHER_CTX_free CALL(ctx_free, void (*)(EVP_CIPHER_CTX *))
#define EVP_CIPHER_CTX_ctrl CALL(ctx_ctrl, int (*)(EVP_CIPHER_CTX *, int, int, void *))
#define EVP_EncryptInit_ex \
    CALL(encrypt_init, int (*)(EVP_CIPHER_CTX *, const EVP_CIPHER *, void *, const unsigned char *, const unsigned char *))
#define EVP_EncryptUpdate CALL(encrypt_update, int (*)(EVP_CIPHER_CTX *, unsigned char *, int *, const unsigned char *, int))
#define EVP_EncryptFinal_ex CALL(encrypt_final, int (*)(EVP_CIPHER_CTX *, unsigned char *, int *))
#define CIPHER(name) (((const EVP_CIPHER *(*)(void))vcs_crypto.name)())

vcs_crypto_table vcs_crypto;
uintptr_t vcs_srtp_protect;

#define GCM_TAG 16
#define GCM_SALT 12
#define REPLAY_WINDOW 1024 /* libsrtp's, as aiortc sets it: older indexes are refused */

/* a plain memset before a buffer goes out of use may be dropped by the compiler */
static void wipe(void *p, size_t n) {
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

struct vcs_gcm {
    EVP_CIPHER_CTX *ctx;
    unsigned char salt[GCM_SALT];
};

/* RFC 3711 4.3.1 with a key derivation rate of 0: AES-CTR keystream from IV =
 * (master salt, padded to 14 bytes) XOR (label at byte 7), two zero bytes of block counter. */
static int derive(const EVP_CIPHER *ctr, const unsigned char *master_key, const unsigned char *master_salt,
                  unsigned char label, unsigned char *out, int len) {
    unsigned char iv[16] = {0};
    memcpy(iv, master_salt, GCM_SALT);
    iv[7] ^= label;
    unsigned char zeros[64] = {0};
    int n = 0, ok = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (c != NULL && len <= (int)sizeof(zeros) && EVP_EncryptInit_ex(c, ctr, NULL, master_key, iv) == 1 &&
        EVP_EncryptUpdate(c, out, &n, zeros, len) == 1 && n == len)
        ok = 1;
    EVP_CIPHER_CTX_free(c);
    return ok;
}

vcs_gcm *vcs_gcm_new(const unsigned char *master_key, int key_len, const unsigned char *master_salt) {
    const EVP_CIPHER *ctr, *gcm;
    if (vcs_crypto.ctx_new == 0) /* not bound */
        return NULL;
    if (key_len == 16) {
        ctr = CIPHER(aes_128_ctr);
        gcm = CIPHER(aes_128_gcm);
    } else if (key_len == 32) {
        ctr = CIPHER(aes_256_ctr);
        gcm = CIPHER(aes_256_gcm);
    } else {
        return NULL;
    }
    unsigned char key[32];
    vcs_gcm *g = calloc(1, sizeof(vcs_gcm));
    if (g == NULL)
        return NULL;
    if (!derive(ctr, master_key, master_salt, 0x00, key, key_len) ||
        !derive(ctr, master_key, master_salt, 0x02, g->salt, GCM_SALT) || (g->ctx = EVP_CIPHER_CTX_new()) == NULL ||
        EVP_EncryptInit_ex(g->ctx, gcm, NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(g->ctx, EVP_CTRL_AEAD_SET_IVLEN, GCM_SALT, NULL) != 1 ||
        EVP_EncryptInit_ex(g->ctx, NULL, NULL, key, NULL) != 1) {
        vcs_gcm_free(g);
        g = NULL;
    }
    wipe(key, sizeof(key));
    return g;
}

void vcs_gcm_free(vcs_gcm *g) {
    if (g == NULL)
        return;
    EVP_CIPHER_CTX_free(g->ctx);
    wipe(g, sizeof(*g));
    free(g);
}

/* The packet's index (RFC 3711 3.3.1), guessed from the highest one sent as
 * libsrtp's sender does; the highest moves forward only. Returns 0 when the
 * packet is older than the replay window (libsrtp refuses those). */
static int take_index(vcs_index *ix, uint16_t seq, uint32_t *roc) {
    if (!ix->started) {
        ix->started = 1;
        ix->roc = 0;
        ix->seq = seq;
        *roc = 0;
        return 1;
    }
    uint32_t guess = ix->roc;
    int32_t difference;
    if (ix->seq < 0x8000) {
        if ((int32_t)seq - ix->seq > 0x8000) {
            guess = ix->roc - 1;
            difference = (int32_t)seq - ix->seq - 0x10000;
        } else {
            difference = (int32_t)seq - ix->seq;
        }
    } else if ((int32_t)ix->seq - 0x8000 > seq) {
        guess = ix->roc + 1;
        difference = (int32_t)seq - ix->seq + 0x10000;
    } else {
        difference = (int32_t)seq - ix->seq;
    }
    if (difference <= -REPLAY_WINDOW)
        return 0;
    if (difference > 0) {
        ix->roc = guess;
        ix->seq = seq;
    }
    *roc = guess;
    return 1;
}

static int gcm_protect(vcs_gcm *g, vcs_index *ix, unsigned char *p, int *len) {
    int n = *len;
    if (n < 12 || (p[0] >> 6) != 2)
        return 1;
    int header = 12 + 4 * (p[0] & 0x0F);
    if (p[0] & 0x10) {
        if (header + 4 > n)
            return 1;
        header += 4 + 4 * ((p[header + 2] << 8) | p[header + 3]);
    }
    if (header > n)
        return 1;
    uint16_t seq = (uint16_t)((p[2] << 8) | p[3]);
    uint32_t roc;
    if (!take_index(ix, seq, &roc))
        return 1;
    unsigned char iv[GCM_SALT] = {0, 0, p[8], p[9], p[10], p[11],
                                  (unsigned char)(roc >> 24), (unsigned char)(roc >> 16), (unsigned char)(roc >> 8),
                                  (unsigned char)roc, p[2], p[3]};
    for (int i = 0; i < GCM_SALT; i++)
        iv[i] ^= g->salt[i];
    int out = 0;
    EVP_CIPHER_CTX *c = g->ctx;
    if (EVP_EncryptInit_ex(c, NULL, NULL, NULL, iv) != 1 || EVP_EncryptUpdate(c, NULL, &out, p, header) != 1 ||
        (n > header && EVP_EncryptUpdate(c, p + header, &out, p + header, n - header) != 1) ||
        EVP_EncryptFinal_ex(c, p + n, &out) != 1 || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, GCM_TAG, p + n) != 1)
        return 1;
    *len = n + GCM_TAG;
    return 0;
}

int vcs_protect(vcs_out *o, char *data, int *len) {
    unsigned char *packet = (unsigned char *)data;
    if (o->gcm == NULL) {
        if (vcs_srtp_protect == 0 || o->srtp == NULL)
            return 1;
        return ((int (*)(void *, void *, int *))vcs_srtp_protect)(o->srtp, packet, len);
    }
    if (*len < 12)
        return 1;
    uint32_t ssrc = ((uint32_t)packet[8] << 24) | ((uint32_t)packet[9] << 16) | ((uint32_t)packet[10] << 8) | packet[11];
    for (int i = 0; i < VCS_OUT_SSRCS; i++)
        if (o->ssrc[i] == ssrc && o->index[i].used)
            return gcm_protect(o->gcm, &o->index[i], packet, len);
    return 1; /* not one of this downtrack's SSRCs */
}
