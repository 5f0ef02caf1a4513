// Cableway bench load generator: a small epoll WebSocket client for Action Cable servers.
//
// Opens N connections to 127.0.0.1:<port><path>, upgrades them (Sec-WebSocket-Protocol given by
// --proto), subscribes each to `$pubsub` stream <prefix><i % streams>, waits for every
// confirm_subscription, then publishes broadcasts itself with `POST /_broadcast` on one keep-alive
// connection, putting {"seq":<per-stream seq>,"t":<ns since client start>,"j":<index>} in the
// data, and timestamps every data frame it receives. It prints JSON lines on stdout: an optional
// {"event":"ready"} (with --hold, then it waits for stdin to close) and a final {"event":"result"}.
//
// Build: cc -O2 -Wall -o bench/build/client bench/client.c
// Single-threaded, non-blocking sockets, level-triggered epoll, hard deadline on every phase.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_FRAME (16u << 20)  /* refuse server frames above 16 MiB */
#define MAX_HEADER 16384u
#define HIST_SUB_BITS 6
#define HIST_SUB (1 << HIST_SUB_BITS)
#define HIST_BUCKETS (2 * HIST_SUB + 44 * HIST_SUB)

enum { ST_FREE, ST_CONNECTING, ST_HS_WRITE, ST_HS_READ, ST_SUBSCRIBING, ST_READY, ST_CLOSED,
       ST_FAILED };

typedef struct {
  int fd;
  uint8_t st;
  uint8_t slow;
  uint8_t frag_op;
  uint32_t idx;
  uint32_t stream;
  char *rbuf;            /* leftover bytes of an incomplete header / frame */
  uint32_t rlen, rcap;
  char *wbuf;            /* unsent output */
  uint32_t wlen, woff, wcap;
  char *frag;            /* fragmented message being assembled */
  uint32_t fraglen, fragcap;
  int64_t t0;            /* connect start (ns) */
  uint32_t last;         /* highest seq seen */
  uint64_t seen;         /* bit k set: seq (last - k) seen, k < 64 */
  uint32_t uniq, dups, reord;
} conn_t;

typedef struct {
  int fd;
  int connected;
  char *rbuf;
  uint32_t rlen, rcap;
  char *wbuf;
  uint32_t wlen, woff, wcap;
  int inflight;          /* POSTs written whose response has not been read */
} pub_t;

/* ---- options ---- */
static int opt_port = 0;
static const char *opt_path = "/cable";
static const char *opt_bpath = "/_broadcast";
static int opt_bport = 0;
static int opt_n = 100;
static int opt_streams = 1;
static const char *opt_prefix = "bench_s";
static int opt_broadcasts = 0;
static int opt_window = 1;
static int opt_pipeline = 1;
static int opt_tail_from = -1;   /* also report the last-client latency of broadcasts >= this index */
static int opt_warmup = 0;        /* first broadcasts left out of the latency figures */      /* POSTs in flight on the keep-alive connection */
static int opt_gap_us = 20000;
static int opt_pad = 0;
static double opt_slow_frac = 0;
static int opt_duration_ms = 0;       /* stop sending new broadcasts after this (0 = no limit) */
static int opt_warmup_ms = 0;         /* broadcast this long before measuring the run (0 = none) */
static int opt_concurrency = 500;
static int opt_timeout_ms = 120000;   /* hard deadline for the whole run */
static int opt_bc_timeout_ms = 10000; /* a broadcast not fully delivered by then is given up */
static const char *opt_proto = "actioncable-v1-json";
static int opt_hold = 0;
static int opt_cpu = -1;
static int opt_server_pid = 0;
static int opt_history = 0;           /* history replays to time (ext protocol + broker) */
static int opt_history_msgs = 100;
static int opt_slow_rcvbuf = 4096;
static int opt_port2 = 0;             /* cluster: odd connections go to this port (0 = none) */
static const char *opt_channel = "$pubsub";
static int opt_src_addrs = 16;        /* source addresses 127.0.0.1.. (0 = let connect() pick) */
static const char *opt_aux_pids = ""; /* other processes of the system under test (comma list) */

/* ---- state ---- */
static int ep;
static conn_t *conns;
static pub_t pub = {.fd = -1};
static int64_t t_start_abs;
static char rtmp[1 << 16];
static uint64_t rng = 0x9E3779B97F4A7C15ull;

static int n_started, n_inflight, n_connected, n_subscribed, n_failed, n_closed_by_server;
static int n_fast_ready, n_slow_reset, n_slow_closed, draining;
static uint64_t n_slow_too_slow;
static int64_t last_slow_read;
static uint64_t n_welcome, n_pings, n_disconnect_msgs, n_other_msgs, n_rejects;
static char first_error[256];

/* broadcasts */
static int64_t *bc_sent, *bc_last;
static uint32_t *bc_expected, *bc_got, *bc_seq, *bc_stream;
static uint8_t *bc_done;
static uint32_t *stream_fast;   /* fast subscribers per stream */
static uint32_t *stream_sent;   /* broadcasts written per stream */
static int bc_next, bc_open, bc_completed, bc_timed_out;
static uint64_t post_ok, post_err;
static int64_t next_send_at;
static uint64_t deliveries, deliveries_unknown;
static int64_t first_send_ns = -1, last_delivery_ns = -1;
static uint64_t hist[HIST_BUCKETS];
static uint64_t hist_n;

/* history mode */
static int hist_phase;          /* 0 live, 1 replaying */
static char hist_epoch[64];
static int64_t hist_first_offset = -1;
static int64_t hist_prev_offset;
static uint32_t hist_got, hist_bad, hist_rejects;
static int64_t hist_t0;
static int64_t *hist_times;
static int hist_done;
static int hist_waiting;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec - t_start_abs;
}

static void set_error(const char *fmt, ...) {
  if (first_error[0]) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(first_error, sizeof first_error, fmt, ap);
  va_end(ap);
}

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n);
  if (!q) {
    fprintf(stderr, "client: out of memory\n");
    _exit(4);
  }
  return q;
}

static uint32_t rnd32(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)rng;
}

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

/* utime + stime of a process, in seconds (-1 when unknown). */
static double pid_cpu_seconds(int pid) {
  if (pid <= 0) return -1;
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  if (!p) return -1;
  unsigned long ut = 0, st = 0;
  /* fields after ")": state(3) ... utime(14) stime(15) */
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
    return -1;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double server_cpu_seconds(void) { return pid_cpu_seconds(opt_server_pid); }

/* The other processes of the system under test (a second node, Redis, the RPC backend): their
 * CPU time is part of the run, not a disturbance. 0 when there are none. */
static double aux_cpu_seconds(void) {
  double sum = 0;
  for (const char *p = opt_aux_pids; *p;) {
    int pid = atoi(p);
    double v = pid_cpu_seconds(pid);
    if (v > 0) sum += v;
    const char *comma = strchr(p, ',');
    if (!comma) break;
    p = comma + 1;
  }
  return sum;
}

/* CPU seconds the whole machine spent busy (user, nice, system, irq, softirq), from /proc/stat;
 * steal (time the hypervisor gave to others) is returned through *steal. */
static double machine_cpu_seconds(double *steal) {
  FILE *f = fopen("/proc/stat", "r");
  unsigned long long v[8] = {0};
  if (!f) return -1;
  int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                 &v[4], &v[5], &v[6], &v[7]);
  fclose(f);
  if (n < 7) return -1;
  double hz = (double)sysconf(_SC_CLK_TCK);
  if (steal) *steal = (double)v[7] / hz;
  return (double)(v[0] + v[1] + v[2] + v[5] + v[6]) / hz;
}

/* ---- latency histogram (µs, log-linear, ~1.5% resolution) ---- */
static int hbucket(uint64_t us) {
  if (us < 2 * HIST_SUB) return (int)us;
  int msb = 63 - __builtin_clzll(us);
  int b = 2 * HIST_SUB + (msb - HIST_SUB_BITS - 1) * HIST_SUB +
          (int)((us >> (msb - HIST_SUB_BITS)) & (HIST_SUB - 1));
  return b < HIST_BUCKETS ? b : HIST_BUCKETS - 1;
}

static double hvalue(int b) {
  if (b < 2 * HIST_SUB) return b;
  int o = (b - 2 * HIST_SUB) / HIST_SUB, s = (b - 2 * HIST_SUB) % HIST_SUB;
  int msb = o + HIST_SUB_BITS + 1;
  double width = (double)(1ull << (msb - HIST_SUB_BITS));
  return (double)(HIST_SUB + s) * width + width / 2;
}

static double hpercentile(double q) {
  if (!hist_n) return -1;
  uint64_t rank = (uint64_t)(q * (double)(hist_n - 1)) + 1, acc = 0;
  for (int b = 0; b < HIST_BUCKETS; b++) {
    acc += hist[b];
    if (acc >= rank) return hvalue(b);
  }
  return hvalue(HIST_BUCKETS - 1);
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static double pct_sorted(const int64_t *v, int n, double q) {
  if (n <= 0) return -1;
  double pos = q * (n - 1);
  int lo = (int)pos;
  int hi = lo + 1 < n ? lo + 1 : lo;
  return (double)v[lo] + (double)(v[hi] - v[lo]) * (pos - lo);
}

/* ---- socket helpers ---- */
static void ep_set(int fd, uint32_t events, void *ptr, int op) {
  struct epoll_event ev = {.events = events, .data.ptr = ptr};
  if (epoll_ctl(ep, op, fd, &ev) < 0 && op != EPOLL_CTL_DEL) set_error("epoll_ctl: %s", strerror(errno));
}

static void close_fd_hard(int fd) {
  struct linger lg = {1, 0}; /* RST: no TIME_WAIT left behind on the client's ports */
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(fd);
}

static void conn_close(conn_t *c, int st) {
  if (c->fd >= 0) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close_fd_hard(c->fd);
    c->fd = -1;
  }
  if (c->st == ST_CONNECTING || c->st == ST_HS_WRITE || c->st == ST_HS_READ ||
      c->st == ST_SUBSCRIBING) {
    n_inflight--;
  }
  if (c->st == ST_READY && !c->slow) n_fast_ready--;
  c->st = st;
  free(c->rbuf);
  free(c->wbuf);
  free(c->frag);
  c->rbuf = c->wbuf = c->frag = NULL;
  c->rlen = c->rcap = c->wlen = c->woff = c->wcap = c->fraglen = c->fragcap = 0;
}

static void conn_fail(conn_t *c, const char *why) {
  if (c->st == ST_CONNECTING || c->st == ST_HS_WRITE || c->st == ST_HS_READ ||
      c->st == ST_SUBSCRIBING) {
    n_failed++;
    set_error("connection %u: %s", c->idx, why);
  } else if (c->st == ST_READY) {
    if (c->slow) n_slow_closed++;
    else n_closed_by_server++;
  }
  conn_close(c, c->st == ST_READY ? ST_CLOSED : ST_FAILED);
}

static uint32_t conn_events(conn_t *c) {
  uint32_t ev = 0;
  if (!(c->slow && c->st == ST_READY && !draining)) ev |= EPOLLIN;
  if (c->wlen > c->woff || c->st == ST_CONNECTING) ev |= EPOLLOUT;
  return ev;
}

/* Queues bytes and writes what the socket takes now. Returns -1 when the socket broke. */
static int buf_send(int fd, char **wbuf, uint32_t *wlen, uint32_t *woff, uint32_t *wcap,
                    const char *data, uint32_t len) {
  if (*wlen == *woff) {
    *wlen = *woff = 0;
    while (len) {
      ssize_t w = write(fd, data, len);
      if (w < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        return -1;
      }
      data += w;
      len -= (uint32_t)w;
    }
    if (!len) return 0;
  }
  if (*wlen + len > *wcap) {
    if (*woff) {
      memmove(*wbuf, *wbuf + *woff, *wlen - *woff);
      *wlen -= *woff;
      *woff = 0;
    }
    if (*wlen + len > *wcap) {
      *wcap = (*wlen + len) * 2;
      *wbuf = xrealloc(*wbuf, *wcap);
    }
  }
  memcpy(*wbuf + *wlen, data, len);
  *wlen += len;
  return 1;
}

static int buf_flush(int fd, char *wbuf, uint32_t *wlen, uint32_t *woff) {
  while (*woff < *wlen) {
    ssize_t w = write(fd, wbuf + *woff, *wlen - *woff);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 1;
      return -1;
    }
    *woff += (uint32_t)w;
  }
  *wlen = *woff = 0;
  return 0;
}

static void conn_send(conn_t *c, const char *data, uint32_t len) {
  int r = buf_send(c->fd, &c->wbuf, &c->wlen, &c->woff, &c->wcap, data, len);
  if (r < 0) {
    conn_fail(c, "write failed");
    return;
  }
  if (r > 0) ep_set(c->fd, conn_events(c), c, EPOLL_CTL_MOD);
}

/* Sends one masked client frame. */
static void ws_send(conn_t *c, int opcode, const char *payload, uint32_t len) {
  char *f = malloc(len + 14);
  if (!f) _exit(4);
  uint32_t h = 0;
  f[h++] = (char)(0x80 | opcode);
  if (len < 126) {
    f[h++] = (char)(0x80 | len);
  } else if (len < 65536) {
    f[h++] = (char)(0x80 | 126);
    f[h++] = (char)(len >> 8);
    f[h++] = (char)len;
  } else {
    f[h++] = (char)(0x80 | 127);
    for (int i = 7; i >= 0; i--) f[h++] = (char)(i >= 4 ? 0 : (len >> (8 * i)));
  }
  uint32_t key = rnd32();
  uint8_t mk[4] = {(uint8_t)(key >> 24), (uint8_t)(key >> 16), (uint8_t)(key >> 8), (uint8_t)key};
  memcpy(f + h, mk, 4);
  h += 4;
  for (uint32_t i = 0; i < len; i++) f[h + i] = (char)(payload[i] ^ mk[i & 3]);
  conn_send(c, f, h + len);
  free(f);
}

static int identifier_json(char *out, size_t cap, uint32_t stream) {
  /* the identifier is a JSON string holding a JSON object: escape its quotes once */
  return snprintf(out, cap, "\"{\\\"channel\\\":\\\"%s\\\",\\\"stream_name\\\":\\\"%s%u\\\"}\"",
                  opt_channel, opt_prefix, stream);
}

static void send_subscribe(conn_t *c) {
  char id[256], msg[512];
  identifier_json(id, sizeof id, c->stream);
  int n = snprintf(msg, sizeof msg, "{\"command\":\"subscribe\",\"identifier\":%s}", id);
  ws_send(c, 1, msg, (uint32_t)n);
}

/* Asks for the stream's history since the client started (`since`, Unix seconds): with a history
 * limit of 100 the offset form can return at most 99 (offset == oldest - 1 is rejected). */
static long long hist_since;

static void send_history(conn_t *c) {
  char id[256], msg[768];
  identifier_json(id, sizeof id, c->stream);
  int n = snprintf(msg, sizeof msg,
                   "{\"command\":\"history\",\"identifier\":%s,\"history\":{\"since\":%lld}}", id,
                   hist_since);
  hist_got = 0;
  hist_prev_offset = hist_first_offset - 1;
  hist_waiting = 1;
  hist_t0 = now_ns();
  ws_send(c, 1, msg, (uint32_t)n);
}

/* Source ports: connect() on an unbound socket searches the ephemeral range for a free 4-tuple,
 * which near 20k connections costs most of a core. Instead every connection binds an explicit
 * (127.0.0.<1+k>, port) pair, k = index mod --src-addrs, with a cursor per address walking the
 * local port range: one bind() per connection, retried on the next port when that one is taken.
 * Only odd ports are used: Linux hands even ports to bind(0) (servers picking a free port) and
 * prefers odd ones for connect(), and keeping to that leaves other processes' bind(0) alone. */
static uint32_t port_lo = 32768, port_hi = 60999;
static uint32_t *port_cursor;
static uint64_t bind_retries;

static void ports_init(void) {
  FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
  if (f) {
    unsigned a = 0, b = 0;
    if (fscanf(f, "%u %u", &a, &b) == 2 && a > 0 && b > a && b < 65536) {
      port_lo = a;
      port_hi = b;
    }
    fclose(f);
  }
  if (opt_src_addrs > 0) {
    port_cursor = calloc((size_t)opt_src_addrs, sizeof *port_cursor);
    for (int k = 0; k < opt_src_addrs; k++)
      port_cursor[k] = (port_lo + rnd32() % (port_hi - port_lo + 1)) | 1u;
  }
}

/* Binds fd to the connection's source address and the next free port; -1 when none was found. */
static int bind_source(int fd, uint32_t idx) {
  if (opt_src_addrs <= 0) return 0;
  int k = (int)(idx % (uint32_t)opt_src_addrs);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK + (uint32_t)k);
  for (int attempt = 0; attempt < 256; attempt++) {
    uint32_t p = port_cursor[k];
    port_cursor[k] += 2;
    if (port_cursor[k] > port_hi) port_cursor[k] = port_lo | 1u;
    if (p > port_hi) continue;
    if ((int)p == opt_port || (int)p == opt_port2 || (int)p == opt_bport) continue;
    sa.sin_port = htons((uint16_t)p);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0) return 0;
    if (errno != EADDRINUSE) return -1;
    bind_retries++;
  }
  errno = EADDRINUSE;
  return -1;
}

static void start_connect(conn_t *c) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  c->t0 = now_ns();
  n_started++;
  n_inflight++;
  c->st = ST_CONNECTING;
  if (fd < 0) {
    c->fd = -1;
    conn_fail(c, strerror(errno));
    return;
  }
  c->fd = fd;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (c->slow && opt_slow_rcvbuf > 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &opt_slow_rcvbuf, sizeof opt_slow_rcvbuf);
  if (bind_source(fd, c->idx) < 0) {
    conn_fail(c, strerror(errno));
    return;
  }
  int port = opt_port2 > 0 && (c->idx & 1) ? opt_port2 : opt_port;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
    conn_fail(c, strerror(errno));
    return;
  }
  ep_set(fd, EPOLLOUT, c, EPOLL_CTL_ADD);
}

static void send_upgrade(conn_t *c) {
  char req[512];
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                   "Sec-WebSocket-Protocol: %s\r\n\r\n",
                   opt_path, opt_port, "dGhlIHNhbXBsZSBub25jZQ==", opt_proto);
  c->st = ST_HS_READ;
  conn_send(c, req, (uint32_t)n);
  if (c->fd >= 0) ep_set(c->fd, conn_events(c), c, EPOLL_CTL_MOD);
}

/* ---- message handling ---- */
static const char *find(const char *h, size_t hl, const char *needle) {
  return memmem(h, hl, needle, strlen(needle));
}

static int64_t num_after(const char *p, const char *end, const char *key, const char **out) {
  const char *k = memmem(p, (size_t)(end - p), key, strlen(key));
  if (!k) return -1;
  k += strlen(key);
  int64_t v = 0;
  int any = 0;
  while (k < end && *k >= '0' && *k <= '9') {
    v = v * 10 + (*k++ - '0');
    any = 1;
  }
  if (out) *out = k;
  return any ? v : -1;
}

static void record_data(conn_t *c, const char *m, size_t len, int64_t now) {
  const char *end = m + len, *p;
  int64_t seq = num_after(m, end, "\"seq\":", &p);
  if (seq < 0) {
    n_other_msgs++;
    return;
  }
  int64_t t = num_after(p, end, "\"t\":", NULL);
  int64_t j = num_after(p, end, "\"j\":", NULL);

  if (hist_phase) {
    int64_t off = num_after(m, end, "\"offset\":", NULL);
    if (hist_waiting) {
      if (off != hist_prev_offset + 1) hist_bad++;
      hist_prev_offset = off;
      hist_got++;
    }
    return;
  }
  if (opt_history) {
    /* learning the epoch and offsets from the live copies */
    int64_t off = num_after(m, end, "\"offset\":", NULL);
    const char *e = find(m, len, "\"epoch\":\"");
    if (e) {
      e += 9;
      const char *q = memchr(e, '"', (size_t)(end - e));
      if (q && q - e < (long)sizeof hist_epoch) {
        memcpy(hist_epoch, e, (size_t)(q - e));
        hist_epoch[q - e] = 0;
      }
    }
    if (off > 0 && (hist_first_offset < 0 || off < hist_first_offset)) hist_first_offset = off;
  }

  if (c->slow) return; /* slow readers are not measured */
  deliveries++;
  if (t >= 0 && now >= t && j >= opt_warmup) {
    uint64_t us = (uint64_t)(now - t) / 1000;
    hist[hbucket(us)]++;
    hist_n++;
  }
  if (now > last_delivery_ns) last_delivery_ns = now;
  if (j >= 0 && j < bc_next) {
    bc_got[j]++;
    if (now > bc_last[j]) bc_last[j] = now;
    if (!bc_done[j] && bc_got[j] >= bc_expected[j]) {
      bc_done[j] = 1;
      bc_open--;
      bc_completed++;
      if (opt_gap_us > 0) next_send_at = now + (int64_t)opt_gap_us * 1000;
    }
  } else {
    deliveries_unknown++;
  }
  /* order check per connection: seq is 1-based per stream */
  uint32_t s = (uint32_t)seq;
  if (s > c->last) {
    uint32_t shift = s - c->last;
    c->seen = shift >= 64 ? 0 : c->seen << shift;
    c->seen |= 1;
    c->last = s;
    c->uniq++;
  } else {
    uint32_t back = c->last - s;
    if (back >= 64) {
      c->dups++; /* too old to tell; counted as a duplicate */
    } else if (c->seen & (1ull << back)) {
      c->dups++;
    } else {
      c->seen |= 1ull << back;
      c->reord++;
      c->uniq++;
    }
  }
}

static void handle_message(conn_t *c, const char *m, size_t len, int64_t now) {
  if (find(m, len, "\"seq\":")) {
    record_data(c, m, len, now);
    return;
  }
  if (find(m, len, "confirm_subscription")) {
    if (c->st == ST_SUBSCRIBING) {
      c->st = ST_READY;
      n_inflight--;
      n_subscribed++;
      if (!c->slow) n_fast_ready++;
      if (c->slow) ep_set(c->fd, conn_events(c), c, EPOLL_CTL_MOD);
    }
    return;
  }
  if (find(m, len, "\"ping\"")) {
    n_pings++;
    return;
  }
  if (find(m, len, "confirm_history")) {
    if (hist_waiting) {
      int64_t dt = now - hist_t0;
      if (hist_got != (uint32_t)opt_history_msgs) hist_bad++;
      hist_times[hist_done++] = dt;
      hist_waiting = 0;
    }
    return;
  }
  if (find(m, len, "reject_history")) {
    hist_rejects++;
    hist_waiting = 0;
    set_error("reject_history");
    return;
  }
  if (find(m, len, "welcome")) {
    n_welcome++;
    return;
  }
  if (find(m, len, "reject_subscription")) {
    n_rejects++;
    conn_fail(c, "reject_subscription");
    return;
  }
  if (find(m, len, "disconnect")) {
    if (c->slow && find(m, len, "too_slow")) n_slow_too_slow++;
    n_disconnect_msgs++;
    return;
  }
  n_other_msgs++;
}

/* Parses frames in data[0..len); returns bytes consumed. May close c. */
static size_t parse_frames(conn_t *c, char *data, size_t len, int64_t now) {
  size_t off = 0;
  while (c->fd >= 0 && len - off >= 2) {
    uint8_t b0 = (uint8_t)data[off], b1 = (uint8_t)data[off + 1];
    int fin = b0 & 0x80, op = b0 & 0x0f, masked = b1 & 0x80;
    uint64_t plen = b1 & 0x7f;
    size_t h = 2;
    if (plen == 126) {
      if (len - off < 4) break;
      plen = ((uint64_t)(uint8_t)data[off + 2] << 8) | (uint8_t)data[off + 3];
      h = 4;
    } else if (plen == 127) {
      if (len - off < 10) break;
      plen = 0;
      for (int i = 0; i < 8; i++) plen = (plen << 8) | (uint8_t)data[off + 2 + i];
      h = 10;
    }
    if (plen > MAX_FRAME) {
      conn_fail(c, "frame too large");
      return len;
    }
    size_t mk = masked ? 4 : 0;
    if (len - off < h + mk + plen) break;
    char *p = data + off + h + mk;
    if (masked) {
      const uint8_t *k = (const uint8_t *)(data + off + h);
      for (uint64_t i = 0; i < plen; i++) p[i] ^= (char)k[i & 3];
    }
    off += h + mk + plen;
    if (op == 0x8) { /* close */
      conn_fail(c, "server closed");
      return len;
    } else if (op == 0x9) { /* ping */
      ws_send(c, 0xA, p, (uint32_t)plen);
    } else if (op == 0xA) {
      /* pong: ignore */
    } else if (op == 0x1 || op == 0x2) {
      if (fin) {
        handle_message(c, p, plen, now);
      } else {
        c->frag_op = (uint8_t)op;
        c->fraglen = 0;
        if (plen > c->fragcap) {
          c->fragcap = (uint32_t)plen * 2 + 64;
          c->frag = xrealloc(c->frag, c->fragcap);
        }
        memcpy(c->frag, p, plen);
        c->fraglen = (uint32_t)plen;
      }
    } else if (op == 0x0) {
      if (!c->frag_op || c->fraglen + plen > MAX_FRAME) {
        conn_fail(c, "bad continuation");
        return len;
      }
      if (c->fraglen + plen > c->fragcap) {
        c->fragcap = (uint32_t)(c->fraglen + plen) * 2;
        c->frag = xrealloc(c->frag, c->fragcap);
      }
      memcpy(c->frag + c->fraglen, p, plen);
      c->fraglen += (uint32_t)plen;
      if (fin) {
        c->frag_op = 0;
        handle_message(c, c->frag, c->fraglen, now);
        if (c->fd >= 0) c->fraglen = 0;
      }
    } else {
      conn_fail(c, "unknown opcode");
      return len;
    }
  }
  return off;
}

static size_t process(conn_t *c, char *data, size_t len, int64_t now) {
  size_t off = 0;
  if (c->st == ST_HS_READ) {
    const char *e = find(data, len, "\r\n\r\n");
    if (!e) {
      if (len > MAX_HEADER) conn_fail(c, "handshake header too long");
      return 0;
    }
    if (len < 12 || memcmp(data + 9, "101", 3) != 0) {
      char line[64];
      size_t l = 0;
      while (l < len && l < sizeof line - 1 && data[l] != '\r') {
        line[l] = data[l];
        l++;
      }
      line[l] = 0;
      conn_fail(c, line);
      return len;
    }
    off = (size_t)(e - data) + 4;
    n_connected++;
    c->st = ST_SUBSCRIBING;
    send_subscribe(c);
    if (c->fd < 0) return len;
  }
  return off + parse_frames(c, data + off, len - off, now);
}

static void on_readable(conn_t *c) {
  ssize_t n;
  do {
    n = read(c->fd, rtmp, sizeof rtmp);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    conn_fail(c, strerror(errno));
    return;
  }
  if (n == 0) {
    conn_fail(c, "EOF");
    return;
  }
  int64_t now = now_ns();
  if (c->slow) last_slow_read = now;
  char *data;
  size_t len;
  if (c->rlen) {
    if (c->rlen + (size_t)n > c->rcap) {
      c->rcap = (uint32_t)(c->rlen + (size_t)n) * 2;
      c->rbuf = xrealloc(c->rbuf, c->rcap);
    }
    memcpy(c->rbuf + c->rlen, rtmp, (size_t)n);
    data = c->rbuf;
    len = c->rlen + (size_t)n;
  } else {
    data = rtmp;
    len = (size_t)n;
  }
  size_t used = process(c, data, len, now);
  if (c->fd < 0) return;
  size_t left = len - used;
  if (left && data == rtmp) {
    if (left > c->rcap) {
      c->rcap = (uint32_t)left * 2 + 256;
      c->rbuf = xrealloc(c->rbuf, c->rcap);
    }
    memcpy(c->rbuf, rtmp + used, left);
  } else if (left && used) {
    memmove(c->rbuf, c->rbuf + used, left);
  }
  c->rlen = (uint32_t)left;
  if (!left && c->rcap > 65536) { /* give back big buffers */
    free(c->rbuf);
    c->rbuf = NULL;
    c->rcap = 0;
  }
}

static void on_writable(conn_t *c) {
  if (c->st == ST_CONNECTING) {
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) {
      conn_fail(c, strerror(err));
      return;
    }
    send_upgrade(c);
    return;
  }
  int r = buf_flush(c->fd, c->wbuf, &c->wlen, &c->woff);
  if (r < 0) {
    conn_fail(c, "write failed");
    return;
  }
  if (r == 0) ep_set(c->fd, conn_events(c), c, EPOLL_CTL_MOD);
}

/* ---- publisher (HTTP POST /_broadcast, keep-alive, sequential) ---- */
static int pub_connect(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt_bport)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    close(fd);
    return -1;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  pub.fd = fd;
  pub.connected = 1;
  ep_set(fd, EPOLLIN, &pub, EPOLL_CTL_ADD);
  return 0;
}

static void pub_post(const char *stream_name, const char *data_json_escaped) {
  static char *body, *req;
  static size_t cap;
  size_t need = strlen(data_json_escaped) + strlen(stream_name) + 512;
  if (need > cap) {
    cap = need;
    body = xrealloc(body, cap);
    req = xrealloc(req, cap + 512);
  }
  int bl = snprintf(body, cap, "{\"stream\":\"%s\",\"data\":\"%s\"}", stream_name,
                    data_json_escaped);
  int rl = snprintf(req, cap + 512,
                    "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                    "Content-Length: %d\r\n\r\n%s",
                    opt_bpath, opt_bport, bl, body);
  int r = buf_send(pub.fd, &pub.wbuf, &pub.wlen, &pub.woff, &pub.wcap, req, (uint32_t)rl);
  if (r < 0) {
    set_error("publisher write failed");
    pub.connected = 0;
    return;
  }
  if (r > 0) ep_set(pub.fd, EPOLLIN | EPOLLOUT, &pub, EPOLL_CTL_MOD);
  pub.inflight++;
}

static char *pad_str;

static void send_broadcast(int64_t now) {
  int j = bc_next;
  uint32_t s = (uint32_t)j % (uint32_t)opt_streams;
  stream_sent[s]++;
  bc_stream[j] = s;
  bc_seq[j] = stream_sent[s];
  bc_expected[j] = stream_fast[s];
  bc_sent[j] = now;
  bc_last[j] = -1;
  bc_next++;
  bc_open++;
  if (first_send_ns < 0) first_send_ns = now;
  static char *data;
  size_t dcap = (size_t)opt_pad + 256;
  if (!data) data = xrealloc(NULL, dcap);
  char name[128];
  snprintf(name, sizeof name, "%s%u", opt_prefix, s);
  snprintf(data, dcap, "{\\\"seq\\\":%u,\\\"t\\\":%lld,\\\"j\\\":%d%s%s%s}", bc_seq[j],
           (long long)now, j, opt_pad ? ",\\\"pad\\\":\\\"" : "", opt_pad ? pad_str : "",
           opt_pad ? "\\\"" : "");
  pub_post(name, data);
  if (bc_expected[j] == 0) {
    bc_done[j] = 1;
    bc_open--;
    bc_completed++;
  }
}

/* Consumes complete HTTP responses from pub.rbuf. */
static void pub_parse(void) {
  for (;;) {
    const char *e = find(pub.rbuf, pub.rlen, "\r\n\r\n");
    if (!e) return;
    size_t hl = (size_t)(e - pub.rbuf) + 4;
    int status = pub.rlen > 12 ? atoi(pub.rbuf + 9) : 0;
    long cl = 0;
    int chunked = 0;
    for (const char *p = pub.rbuf; p < e; p++) {
      if ((p == pub.rbuf || p[-1] == '\n') && !strncasecmp(p, "content-length:", 15))
        cl = atol(p + 15);
      if ((p == pub.rbuf || p[-1] == '\n') && !strncasecmp(p, "transfer-encoding:", 18) &&
          find(p, (size_t)(e - p), "chunked"))
        chunked = 1;
    }
    size_t total;
    if (chunked) {
      const char *z = find(pub.rbuf + hl, pub.rlen - hl, "0\r\n\r\n");
      if (!z) return;
      total = (size_t)(z - pub.rbuf) + 5;
    } else {
      total = hl + (size_t)cl;
      if (pub.rlen < total) return;
    }
    if (status >= 200 && status < 300) {
      post_ok++;
    } else {
      post_err++;
      set_error("broadcast POST answered %d", status);
    }
    pub.inflight--;
    memmove(pub.rbuf, pub.rbuf + total, pub.rlen - total);
    pub.rlen -= (uint32_t)total;
  }
}

static void pub_readable(void) {
  for (;;) {
    if (pub.rcap - pub.rlen < 4096) {
      pub.rcap = pub.rcap ? pub.rcap * 2 : 8192;
      pub.rbuf = xrealloc(pub.rbuf, pub.rcap);
    }
    ssize_t n = read(pub.fd, pub.rbuf + pub.rlen, pub.rcap - pub.rlen);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n <= 0) {
      set_error("publisher connection closed");
      epoll_ctl(ep, EPOLL_CTL_DEL, pub.fd, NULL);
      close(pub.fd);
      pub.fd = -1;
      pub.connected = 0;
      return;
    }
    pub.rlen += (uint32_t)n;
  }
  pub_parse();
}

/* ---- main loop ---- */
static volatile sig_atomic_t stop_flag;
static void on_signal(int s) {
  (void)s;
  stop_flag = 1;
}
static void on_alarm(int s) {
  (void)s;
  static const char m[] = "{\"event\":\"result\",\"ok\":false,\"error\":\"hard timeout\"}\n";
  ssize_t w = write(1, m, sizeof m - 1);
  (void)w;
  _exit(3);
}

static int stdin_open = 1;
static int stdin_token;

static void poll_once(int timeout_ms) {
  struct epoll_event evs[512];
  int n = epoll_wait(ep, evs, 512, timeout_ms);
  if (n < 0 && errno != EINTR) set_error("epoll_wait: %s", strerror(errno));
  for (int i = 0; i < n; i++) {
    void *ptr = evs[i].data.ptr;
    uint32_t e = evs[i].events;
    if (ptr == &stdin_token) {
      char b[256];
      ssize_t r = read(0, b, sizeof b);
      if (r <= 0 || memchr(b, '\n', (size_t)r)) {
        stdin_open = 0;
        epoll_ctl(ep, EPOLL_CTL_DEL, 0, NULL);
      }
      continue;
    }
    if (ptr == &pub) {
      if (e & (EPOLLIN | EPOLLERR | EPOLLHUP)) pub_readable();
      if (pub.fd >= 0 && (e & EPOLLOUT)) {
        int r = buf_flush(pub.fd, pub.wbuf, &pub.wlen, &pub.woff);
        if (r < 0) set_error("publisher write failed");
        else if (r == 0) ep_set(pub.fd, EPOLLIN, &pub, EPOLL_CTL_MOD);
      }
      continue;
    }
    conn_t *c = ptr;
    if (c->fd < 0) continue;
    if (c->st == ST_CONNECTING) {
      if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_writable(c);
      continue;
    }
    if (e & EPOLLOUT) on_writable(c);
    if (c->fd >= 0 && (e & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
      if (c->slow && c->st == ST_READY && !draining && !(e & EPOLLIN)) {
        if (e & (EPOLLERR | EPOLLHUP)) { /* reset while not reading: stop polling it */
          n_slow_reset++;
          conn_close(c, ST_CLOSED);
        }
        continue;
      }
      on_readable(c);
    }
  }
}

static void usage(void) {
  fprintf(stderr,
          "usage: client --port=P [--n=N] [--streams=S] [--prefix=bench_s] [--broadcasts=M]\n"
          "  [--window=W] [--pipeline=K] [--warmup=K] [--gap-us=G] [--pad=BYTES] [--slow-frac=F] [--duration-ms=D]\n"
          "  [--warmup-ms=W]\n"
          "  [--tail-from=K]\n"
          "  [--concurrency=C] [--timeout-ms=T] [--proto=actioncable-v1-json] [--hold]\n"
          "  [--cpu=K] [--server-pid=PID] [--history=R] [--history-msgs=H] [--path=/cable]\n"
          "  [--broadcast-port=P] [--broadcast-path=/_broadcast] [--port2=P] [--channel=$pubsub]\n"
          "  [--src-addrs=16] [--aux-pids=PID,PID]\n");
  exit(2);
}

static void parse_args(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    char *a = argv[i], *v = strchr(a, '=');
    if (strncmp(a, "--", 2) != 0) usage();
    a += 2;
    size_t kl = v ? (size_t)(v - a) : strlen(a);
    if (v) v++;
#define KEY(k) (kl == strlen(k) && !strncmp(a, k, kl))
#define INT(k, var)          \
  if (KEY(k)) {              \
    if (!v) usage();         \
    var = atoi(v);           \
    continue;                \
  }
    INT("port", opt_port);
    INT("broadcast-port", opt_bport);
    INT("n", opt_n);
    INT("streams", opt_streams);
    INT("broadcasts", opt_broadcasts);
    INT("window", opt_window);
    INT("pipeline", opt_pipeline);
    INT("warmup", opt_warmup);
    INT("tail-from", opt_tail_from);
    INT("gap-us", opt_gap_us);
    INT("pad", opt_pad);
    INT("duration-ms", opt_duration_ms);
    INT("warmup-ms", opt_warmup_ms);
    INT("concurrency", opt_concurrency);
    INT("timeout-ms", opt_timeout_ms);
    INT("bc-timeout-ms", opt_bc_timeout_ms);
    INT("cpu", opt_cpu);
    INT("server-pid", opt_server_pid);
    INT("history", opt_history);
    INT("history-msgs", opt_history_msgs);
    INT("slow-rcvbuf", opt_slow_rcvbuf);
    INT("port2", opt_port2);
    INT("src-addrs", opt_src_addrs);
    if (KEY("channel") && v) { opt_channel = v; continue; }
    if (KEY("aux-pids") && v) { opt_aux_pids = v; continue; }
    if (KEY("path") && v) { opt_path = v; continue; }
    if (KEY("broadcast-path") && v) { opt_bpath = v; continue; }
    if (KEY("prefix") && v) { opt_prefix = v; continue; }
    if (KEY("proto") && v) { opt_proto = v; continue; }
    if (KEY("slow-frac") && v) { opt_slow_frac = atof(v); continue; }
    if (KEY("hold")) { opt_hold = 1; continue; }
    usage();
  }
  if (opt_port <= 0 || opt_n < 1 || opt_streams < 1 || opt_window < 1 || opt_concurrency < 1 ||
      opt_pad < 0 || opt_pad > 1000000 || opt_src_addrs < 0 || opt_src_addrs > 250 ||
      opt_warmup_ms < 0)
    usage();
  if (!opt_bport) opt_bport = opt_port;
  if (opt_streams > opt_n) opt_streams = opt_n;
  if (opt_history) {
    opt_n = 1;
    opt_streams = 1;
    opt_broadcasts = opt_history_msgs;
    opt_window = 1000000;
    opt_gap_us = 0;
    opt_slow_frac = 0;
  }
}

int main(int argc, char **argv) {
  parse_args(argc, argv);
  struct timespec ts0;
  clock_gettime(CLOCK_MONOTONIC, &ts0);
  t_start_abs = (int64_t)ts0.tv_sec * 1000000000ll + ts0.tv_nsec;
  rng ^= (uint64_t)ts0.tv_nsec * 0x2545F4914F6CDD1Dull;
  hist_since = (long long)time(NULL) - 1;

  ports_init();
  signal(SIGPIPE, SIG_IGN);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  signal(SIGALRM, on_alarm);
  alarm((unsigned)(opt_timeout_ms / 1000 + 10));

  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rlim_t want = (rlim_t)opt_n + 64;
    if (want > rl.rlim_max) set_error("RLIMIT_NOFILE hard limit %lu < %d connections",
                                      (unsigned long)rl.rlim_max, opt_n);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (opt_cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(opt_cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) < 0) fprintf(stderr, "client: affinity failed\n");
  }

  ep = epoll_create1(EPOLL_CLOEXEC);
  conns = calloc((size_t)opt_n, sizeof *conns);
  stream_fast = calloc((size_t)opt_streams, sizeof *stream_fast);
  stream_sent = calloc((size_t)opt_streams, sizeof *stream_sent);
  int mb = opt_broadcasts > 0 ? opt_broadcasts : 1;
  bc_sent = calloc((size_t)mb, 8);
  bc_last = calloc((size_t)mb, 8);
  bc_expected = calloc((size_t)mb, 4);
  bc_got = calloc((size_t)mb, 4);
  bc_seq = calloc((size_t)mb, 4);
  bc_stream = calloc((size_t)mb, 4);
  bc_done = calloc((size_t)mb, 1);
  hist_times = calloc((size_t)(opt_history > 0 ? opt_history : 1), 8);
  if (opt_pad) {
    pad_str = malloc((size_t)opt_pad + 1);
    memset(pad_str, 'x', (size_t)opt_pad);
    pad_str[opt_pad] = 0;
  }
  int n_slow = 0;
  for (int i = 0; i < opt_n; i++) {
    conn_t *c = &conns[i];
    c->fd = -1;
    c->idx = (uint32_t)i;
    c->stream = (uint32_t)(i % opt_streams);
    /* every k-th connection is slow, spread evenly over streams */
    if (opt_slow_frac > 0) {
      int k = (int)(1.0 / opt_slow_frac + 0.5);
      c->slow = k > 0 && (i % k) == k - 1;
    }
    if (c->slow) n_slow++;
    else stream_fast[c->stream]++;
  }
  int64_t deadline = (int64_t)opt_timeout_ms * 1000000ll;

  /* phase 1: connect + upgrade + subscribe */
  double st0 = 0, st1 = 0, st2 = 0, st3 = 0;
  double cpu0 = cpu_seconds(), scpu0 = server_cpu_seconds(), mcpu0 = machine_cpu_seconds(&st0);
  double acpu0 = aux_cpu_seconds();
  int64_t t_conn0 = now_ns();
  int next_conn = 0;
  while (!stop_flag && now_ns() < deadline) {
    while (next_conn < opt_n && n_inflight < opt_concurrency) start_connect(&conns[next_conn++]);
    if (next_conn >= opt_n && n_inflight == 0) break;
    poll_once(5);
    int64_t now = now_ns();
    /* handshake deadline: 15 s per connection */
    static int64_t last_sweep;
    if (now - last_sweep > 200000000ll) {
      last_sweep = now;
      for (int i = 0; i < next_conn; i++) {
        conn_t *c = &conns[i];
        if (c->fd >= 0 && c->st != ST_READY && now - c->t0 > 15000000000ll)
          conn_fail(c, "handshake timeout");
      }
    }
  }
  int64_t t_conn1 = now_ns();
  double cpu1 = cpu_seconds(), scpu1 = server_cpu_seconds(), mcpu1 = machine_cpu_seconds(&st1);
  double acpu1 = aux_cpu_seconds();
  double connect_s = (double)(t_conn1 - t_conn0) / 1e9;

  /* phase 2: broadcasts; a broadcast is complete when every live fast subscriber has it */
  memset(stream_fast, 0, sizeof *stream_fast * (size_t)opt_streams);
  for (int i = 0; i < opt_n; i++)
    if (conns[i].st == ST_READY && !conns[i].slow) stream_fast[conns[i].stream]++;
  int64_t t_run0 = now_ns(), t_run1 = t_run0;
  double cpu2 = cpu1, cpu3 = cpu1, scpu2 = scpu1, scpu3 = scpu1, mcpu2 = mcpu1, mcpu3 = mcpu1;
  double acpu2 = acpu1, acpu3 = acpu1;
  st2 = st3 = st1;
  if (opt_broadcasts > 0 && n_subscribed > 0 && !stop_flag) {
    if (pub_connect() < 0) {
      set_error("cannot connect publisher to port %d", opt_bport);
    } else {
      cpu2 = cpu_seconds();
      scpu2 = server_cpu_seconds();
      mcpu2 = machine_cpu_seconds(&st2);
      acpu2 = aux_cpu_seconds();
      t_run0 = now_ns();
      next_send_at = t_run0;
      /* --warmup-ms: broadcast that long first, then start the measured run (and its clock) */
      int64_t warm_until = opt_warmup_ms > 0 ? t_run0 + (int64_t)opt_warmup_ms * 1000000ll : -1;
      int64_t stop_sending_at =
          opt_duration_ms > 0 ? t_run0 + (int64_t)(opt_warmup_ms + opt_duration_ms) * 1000000ll
                              : INT64_MAX;
      int64_t last_sweep = 0;
      int sweep_from = 0;
      while (!stop_flag && pub.connected) {
        int64_t now = now_ns();
        if (now >= deadline) {
          set_error("run deadline reached");
          break;
        }
        if (warm_until > 0 && now >= warm_until) {
          /* the measured run starts here: counts, latencies and CPU from now on; broadcasts
           * sent during the warm-up are left out of the latency figures */
          warm_until = -1;
          if (bc_next > opt_warmup) opt_warmup = bc_next;
          deliveries = 0;
          memset(hist, 0, sizeof hist);
          hist_n = 0;
          first_send_ns = now;
          cpu2 = cpu_seconds();
          scpu2 = server_cpu_seconds();
          mcpu2 = machine_cpu_seconds(&st2);
          acpu2 = aux_cpu_seconds();
          t_run0 = now;
        }
        int may_send = bc_next < opt_broadcasts && now < stop_sending_at;
        if (may_send && pub.inflight < opt_pipeline && bc_open < opt_window && now >= next_send_at) {
          send_broadcast(now);
          continue;
        }
        if (!may_send && bc_open == 0 && pub.inflight == 0) break;
        if (now - last_sweep > 50000000ll) {
          last_sweep = now;
          /* broadcasts are sent in order: only the oldest ones can have expired */
          while (sweep_from < bc_next && bc_done[sweep_from]) sweep_from++;
          for (int j = sweep_from; j < bc_next; j++) {
            if (now - bc_sent[j] <= (int64_t)opt_bc_timeout_ms * 1000000ll) break;
            if (!bc_done[j]) {
              bc_done[j] = 1;
              bc_open--;
              bc_timed_out++;
            }
          }
        }
        int wait_ms = 5;
        if (may_send && pub.inflight < opt_pipeline && bc_open < opt_window && next_send_at > now) {
          int64_t w = (next_send_at - now) / 1000000ll;
          wait_ms = w < 5 ? (int)w : 5;
        }
        poll_once(wait_ms);
      }
      t_run1 = now_ns();
      cpu3 = cpu_seconds();
      scpu3 = server_cpu_seconds();
      mcpu3 = machine_cpu_seconds(&st3);
      acpu3 = aux_cpu_seconds();
      /* grace period: catch late duplicates */
      int64_t grace = now_ns() + 100000000ll;
      while (!stop_flag && now_ns() < grace) poll_once(10);
    }
  }

  /* phase 3: history replays */
  int64_t t_hist0 = now_ns();
  if (opt_history && !stop_flag && n_subscribed == 1 && hist_epoch[0] && hist_first_offset > 0) {
    conn_t *c = &conns[0];
    hist_phase = 1;
    int64_t hdl = now_ns() + 60000000000ll;
    for (int r = 0; r < opt_history && !stop_flag && c->fd >= 0 && now_ns() < hdl; r++) {
      send_history(c);
      while (hist_waiting && c->fd >= 0 && !stop_flag && now_ns() < hdl) poll_once(5);
      if (hist_rejects) break;
    }
  } else if (opt_history) {
    set_error("history: no epoch/offset seen on live messages (is a broker enabled?)");
  }
  int64_t t_hist1 = now_ns();

  /* phase 4: hold until stdin closes */
  if (opt_hold && !stop_flag) {
    printf("{\"event\":\"ready\",\"subscribed\":%d,\"failed\":%d}\n", n_subscribed, n_failed);
    fflush(stdout);
    int64_t hdl = now_ns() + 600000000000ll;
    alarm(620);
    if (fcntl(0, F_GETFD) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, 0, &(struct epoll_event){
            .events = EPOLLIN, .data.ptr = &stdin_token}) < 0) {
      stdin_open = 0;
    }
    while (stdin_open && !stop_flag && now_ns() < hdl) poll_once(50);
  }

  /* phase 5: read what the slow readers were sent, to learn whether the server cut them off
   * (a close behind the unread data is invisible until then); at most 5 s */
  int n_slow_ready = 0;
  for (int i = 0; i < opt_n; i++)
    if (conns[i].slow && conns[i].st == ST_READY) n_slow_ready++;
  if (n_slow_ready && !stop_flag) {
    draining = 1;
    for (int i = 0; i < opt_n; i++)
      if (conns[i].slow && conns[i].st == ST_READY)
        ep_set(conns[i].fd, conn_events(&conns[i]), &conns[i], EPOLL_CTL_MOD);
    int64_t ddl = now_ns() + 5000000000ll;
    last_slow_read = now_ns();
    while (!stop_flag && now_ns() < ddl) {
      poll_once(20);
      if (n_slow_closed + n_slow_reset >= n_slow_ready) break;
      if (now_ns() - last_slow_read > 500000000ll) break; /* the rest went quiet: still open */
    }
  }

  /* results */
  int slow_closed = n_slow_reset + n_slow_closed;
  uint64_t lost = 0, dups = 0, reord = 0, expected = 0;
  int fast_alive = 0;
  for (int i = 0; i < opt_n; i++) {
    conn_t *c = &conns[i];
    if (c->slow || opt_history) continue;
    if (c->st == ST_READY) fast_alive++;
    if (c->st != ST_READY && c->st != ST_CLOSED) continue;
    uint32_t exp = stream_sent[c->stream];
    expected += exp;
    if (c->uniq < exp) lost += exp - c->uniq;
    dups += c->dups;
    reord += c->reord;
  }
  int64_t *lat = malloc(sizeof(int64_t) * (size_t)(bc_next > 0 ? bc_next : 1));
  int nl = 0;
  for (int j = 0; j < bc_next; j++)
    if (j >= opt_warmup && bc_got[j] >= bc_expected[j] && bc_expected[j] > 0 && bc_last[j] >= 0)
      lat[nl++] = bc_last[j] - bc_sent[j];
  /* the same figure over the broadcasts from --tail-from on (the steady state) */
  int64_t *tail = malloc(sizeof(int64_t) * (size_t)(bc_next > 0 ? bc_next : 1));
  int nt = 0;
  for (int j = opt_tail_from >= 0 ? opt_tail_from : bc_next; j < bc_next; j++)
    if (j >= opt_warmup && bc_got[j] >= bc_expected[j] && bc_expected[j] > 0 && bc_last[j] >= 0)
      tail[nt++] = bc_last[j] - bc_sent[j];
  qsort(tail, (size_t)nt, sizeof *tail, cmp_i64);
  qsort(lat, (size_t)nl, sizeof *lat, cmp_i64);
  double lat_mean = 0;
  for (int i = 0; i < nl; i++) lat_mean += (double)lat[i];
  if (nl) lat_mean /= nl;
  qsort(hist_times, (size_t)hist_done, sizeof *hist_times, cmp_i64);

  double run_s = (double)(t_run1 - t_run0) / 1e9;
  double span_s = first_send_ns >= 0 && last_delivery_ns > first_send_ns
                      ? (double)(last_delivery_ns - first_send_ns) / 1e9
                      : 0;
  double ccpu_conn = connect_s > 0 ? (cpu1 - cpu0) / connect_s : 0;
  double ccpu_run = run_s > 0 ? (cpu3 - cpu2) / run_s : 0;
  double scpu_conn = scpu0 >= 0 && connect_s > 0 ? (scpu1 - scpu0) / connect_s : -1;
  double scpu_run = scpu2 >= 0 && run_s > 0 ? (scpu3 - scpu2) / run_s : -1;
  /* cores used by everything but this client and the server (other processes, kernel threads),
   * plus steal: a run with much of it was disturbed */
  double other_conn = scpu0 >= 0 && mcpu0 >= 0 && connect_s > 0
                          ? ((mcpu1 - mcpu0) - (cpu1 - cpu0) - (scpu1 - scpu0) - (acpu1 - acpu0) +
                             (st1 - st0)) /
                                connect_s
                          : -1;
  double other_run = scpu2 >= 0 && mcpu2 >= 0 && run_s > 0
                         ? ((mcpu3 - mcpu2) - (cpu3 - cpu2) - (scpu3 - scpu2) - (acpu3 - acpu2) +
                            (st3 - st2)) / run_s
                         : -1;
  double aux_conn = connect_s > 0 ? (acpu1 - acpu0) / connect_s : 0;
  double aux_run = run_s > 0 ? (acpu3 - acpu2) / run_s : 0;
  int ok = n_failed == 0 && n_subscribed == opt_n && !first_error[0];

  printf("{\"event\":\"result\",\"ok\":%s,\"n\":%d,\"slow\":%d,\"streams\":%d,"
         "\"connected\":%d,\"subscribed\":%d,\"connect_failures\":%d,\"connect_s\":%.4f,"
         "\"connect_rate\":%.1f,\"closed_by_server\":%d,\"fast_alive\":%d,\"slow_closed\":%d,"
         "\"slow_too_slow\":%llu,"
         "\"broadcasts_sent\":%d,\"broadcasts_complete\":%d,\"broadcasts_timed_out\":%d,"
         "\"post_ok\":%llu,\"post_errors\":%llu,"
         "\"last_n\":%d,\"delivery_n\":%llu,\"last_p50_us\":%.1f,\"last_p99_us\":%.1f,\"last_max_us\":%.1f,\"last_mean_us\":%.1f,"
         "\"tail_n\":%d,\"tail_p50_us\":%.1f,\"tail_p99_us\":%.1f,"
         "\"delivery_p50_us\":%.1f,\"delivery_p99_us\":%.1f,"
         "\"deliveries\":%llu,\"expected_deliveries\":%llu,\"deliveries_per_s\":%.1f,"
         "\"lost\":%llu,\"duplicated\":%llu,\"reordered\":%llu,\"unknown\":%llu,"
         "\"welcome\":%llu,\"pings\":%llu,\"disconnect_msgs\":%llu,\"other_msgs\":%llu,"
         "\"run_s\":%.4f,\"client_cpu_connect\":%.3f,\"client_cpu_run\":%.3f,"
         "\"server_cpu_connect\":%.3f,\"server_cpu_run\":%.3f,"
         "\"other_cpu_connect\":%.3f,\"other_cpu_run\":%.3f,\"client_saturated\":%s,"
         "\"aux_cpu_connect\":%.3f,\"aux_cpu_run\":%.3f,\"src_addrs\":%d,\"bind_retries\":%llu,",
         ok ? "true" : "false", opt_n, n_slow, opt_streams, n_connected, n_subscribed, n_failed,
         connect_s, connect_s > 0 ? n_subscribed / connect_s : 0, n_closed_by_server, fast_alive, slow_closed,
         (unsigned long long)n_slow_too_slow,
         bc_next, bc_completed, bc_timed_out, (unsigned long long)post_ok,
         (unsigned long long)post_err, nl, (unsigned long long)hist_n, pct_sorted(lat, nl, 0.5) / 1e3,
         pct_sorted(lat, nl, 0.99) / 1e3, nl ? (double)lat[nl - 1] / 1e3 : -1, lat_mean / 1e3,
         nt, pct_sorted(tail, nt, 0.5) / 1e3, pct_sorted(tail, nt, 0.99) / 1e3,
         hpercentile(0.5), hpercentile(0.99), (unsigned long long)deliveries,
         (unsigned long long)expected, span_s > 0 ? (double)deliveries / span_s : 0,
         (unsigned long long)lost, (unsigned long long)dups, (unsigned long long)reord,
         (unsigned long long)deliveries_unknown, (unsigned long long)n_welcome,
         (unsigned long long)n_pings, (unsigned long long)n_disconnect_msgs,
         (unsigned long long)n_other_msgs, run_s, ccpu_conn, ccpu_run, scpu_conn, scpu_run, other_conn, other_run,
         (run_s > 0.05 ? ccpu_run > 0.9 : connect_s > 0.05 && ccpu_conn > 0.9) ? "true" : "false",
         aux_conn, aux_run, opt_src_addrs, (unsigned long long)bind_retries);
  printf("\"history\":{\"reps\":%d,\"epoch\":\"%s\",\"first_offset\":%lld,\"bad\":%u,"
         "\"rejects\":%u,\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,\"s\":%.3f},",
         hist_done, hist_epoch, (long long)hist_first_offset, hist_bad, hist_rejects,
         pct_sorted(hist_times, hist_done, 0.5) / 1e3, pct_sorted(hist_times, hist_done, 0.99) / 1e3,
         hist_done ? (double)hist_times[hist_done - 1] / 1e3 : -1,
         (double)(t_hist1 - t_hist0) / 1e9);
  printf("\"error\":\"");
  for (const char *p = first_error; *p; p++) {
    if (*p == '"' || *p == '\\') putchar('\\');
    putchar((unsigned char)*p >= 0x20 ? *p : ' ');
  }
  printf("\"}\n");
  fflush(stdout);

  for (int i = 0; i < opt_n; i++)
    if (conns[i].fd >= 0) close_fd_hard(conns[i].fd);
  if (pub.fd >= 0) close(pub.fd);
  return 0;
}
