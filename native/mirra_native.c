/*
 * mirra_native: the few Linux calls Node.js has no binding for.
 *
 * fallocate(2) punches holes (TRIM) and zeroes ranges (WRITE_ZEROES) without writing every
 * byte; BLKDISCARD and BLKZEROOUT do the same on block devices. Each call runs on the libuv
 * thread pool (napi async work) so that the event loop never blocks on the filesystem, and
 * reports errno to the callback so the caller can map it to an NBD error.
 *
 * JS signature: rangeOp(op, fd, offset, length, callback(errno)) where errno is 0 on success.
 *
 * threadVoluntarySwitches counts the calling thread's voluntary context switches
 * (getrusage RUSAGE_THREAD): around a slow synchronous write it tells a write the kernel made
 * sleep (dirty-page throttling) from one that was only preempted by other work.
 *
 * JS signature: threadVoluntarySwitches() -> number.
 *
 * preadNowait/pwriteNowait try the IO synchronously with RWF_NOWAIT: the kernel serves it only
 * if it would not block (data already in the page cache, no allocation needed), and otherwise
 * fails with EAGAIN at once. A hit saves the round trip through the thread pool; a miss costs
 * one cheap syscall and the caller falls back to the pool. The event loop never waits on disk.
 *
 * JS signature: preadNowait(fd, buf, bufOffset, length, position) -> bytes, or -errno.
 *
 * ioBatch runs many preads/pwrites/fdatasyncs as ONE thread-pool job. Each job costs two
 * context switches (wake a worker, wake the loop), and on a virtual machine a context switch
 * costs more than a 4 KiB copy, so at depth 64 batching is most of the IO path's CPU. The
 * caller keeps every buffer alive until the callback.
 *
 * JS signature: ioBatch(ops: Array<[kind, fd, Uint8Array, bufOffset, length, position]>,
 *                       results: Float64Array, callback()) with kind 0 = read, 1 = write,
 *                       2 = fdatasync, 3 = direct write; results[i] = bytes done, or -errno.
 * A direct write is for an fd opened with O_DIRECT: O_DIRECT needs buffers aligned to the
 * logical block size, which JS memory is not, so the worker copies the data into an aligned
 * bounce buffer first (a copy into warm memory, far cheaper than the page-cache copy it saves),
 * unless the data is already 4096-aligned (alignedBuffer); position and length must be
 * multiples of 4096.
 *
 * setSendBuffer sets a socket's SO_SNDBUF (Node sets it only for UDP): the NBD server grows a
 * Unix socket's buffer when a burst of read replies does not fit in the default ~208 KiB.
 *
 * JS signature: setSendBuffer(fd, bytes) -> the size the kernel granted, or -errno.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <time.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <node_api.h>

enum range_op { OP_PUNCH_HOLE = 0, OP_ZERO_RANGE = 1, OP_BLK_DISCARD = 2, OP_BLK_ZEROOUT = 3 };

typedef struct {
  napi_async_work work;
  napi_ref callback;
  int op;
  int fd;
  int64_t offset;
  int64_t length;
  int err;
} range_call;

static void range_execute(napi_env env, void *data) {
  (void)env;
  range_call *c = data;
  int rc = -1;
  uint64_t range[2] = {(uint64_t)c->offset, (uint64_t)c->length};
  switch (c->op) {
  case OP_PUNCH_HOLE:
    rc = fallocate(c->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, c->offset, c->length);
    break;
  case OP_ZERO_RANGE:
    rc = fallocate(c->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, c->offset, c->length);
    break;
  case OP_BLK_DISCARD:
    rc = ioctl(c->fd, BLKDISCARD, range);
    break;
  case OP_BLK_ZEROOUT:
    rc = ioctl(c->fd, BLKZEROOUT, range);
    break;
  default:
    errno = EINVAL;
  }
  c->err = rc == 0 ? 0 : errno;
}

static void range_complete(napi_env env, napi_status status, void *data) {
  range_call *c = data;
  napi_value cb, global, arg;
  int err = status == napi_ok ? c->err : EIO;
  napi_get_reference_value(env, c->callback, &cb);
  napi_get_global(env, &global);
  napi_create_int32(env, err, &arg);
  napi_call_function(env, global, cb, 1, &arg, NULL);
  napi_delete_reference(env, c->callback);
  napi_delete_async_work(env, c->work);
  free(c);
}

static napi_value range_op(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 5) {
    napi_throw_type_error(env, NULL, "rangeOp(op, fd, offset, length, callback) takes 5 arguments");
    return NULL;
  }
  int32_t op, fd;
  int64_t offset, length;
  napi_valuetype cbType;
  if (napi_get_value_int32(env, argv[0], &op) != napi_ok ||
      napi_get_value_int32(env, argv[1], &fd) != napi_ok ||
      napi_get_value_int64(env, argv[2], &offset) != napi_ok ||
      napi_get_value_int64(env, argv[3], &length) != napi_ok ||
      napi_typeof(env, argv[4], &cbType) != napi_ok || cbType != napi_function) {
    napi_throw_type_error(env, NULL, "rangeOp: bad argument types");
    return NULL;
  }
  if (op < OP_PUNCH_HOLE || op > OP_BLK_ZEROOUT || fd < 0 || offset < 0 || length <= 0) {
    napi_throw_range_error(env, NULL, "rangeOp: argument out of range");
    return NULL;
  }
  range_call *c = calloc(1, sizeof(*c));
  if (c == NULL) {
    napi_throw_error(env, NULL, "rangeOp: out of memory");
    return NULL;
  }
  c->op = op;
  c->fd = fd;
  c->offset = offset;
  c->length = length;
  napi_value name;
  napi_create_string_utf8(env, "mirra.rangeOp", NAPI_AUTO_LENGTH, &name);
  napi_create_reference(env, argv[4], 1, &c->callback);
  napi_create_async_work(env, NULL, name, range_execute, range_complete, c, &c->work);
  napi_queue_async_work(env, c->work);
  return NULL;
}

enum batch_kind { BATCH_READ = 0, BATCH_WRITE = 1, BATCH_FDATASYNC = 2, BATCH_WRITE_DIRECT = 3 };

typedef struct {
  int kind;
  int fd;
  char *data;
  size_t length;
  int64_t position;
} batch_op;

typedef struct {
  napi_async_work work;
  napi_ref callback;
  napi_ref results_ref;
  double *results;
  size_t count;
  batch_op ops[];
} batch_call;

/* Each pool thread keeps its bounce buffer for direct writes up to this size: a fresh
 * allocation of that size is an mmap whose every page faults on first touch. */
#define BOUNCE_KEEP_BYTES (4u << 20)
static __thread void *kept_bounce;
static __thread size_t kept_bounce_bytes;

static void *bounce_for(size_t length) {
  if (length <= kept_bounce_bytes) return kept_bounce;
  void *p = NULL;
  if (posix_memalign(&p, 4096, length) != 0) return NULL;
  if (length <= BOUNCE_KEEP_BYTES) {
    free(kept_bounce);
    kept_bounce = p;
    kept_bounce_bytes = length;
  }
  return p;
}

/* A buffered write of N bytes leaves folios of up to N bytes in the page cache (ext4 on
 * Linux 6.x), and every later small write into a folio walks all of its buffer heads
 * (ext4_block_write_begin), as does its writeback: after a volume was written in 1 MiB
 * pieces, a 4 KiB random write cost 2 to 3 times the CPU. Written in 32 KiB pieces, the
 * folios stay at most 32 KiB, for 32 syscalls per MiB instead of one (128 KiB sequential
 * writes kept their speed; 16 KiB pieces cost them 10%). Exported as writePieceBytes for the
 * inline writes of local_volume.ts. */
#define WRITE_PIECE_BYTES (32u << 10)

static int64_t run_op(const batch_op *op) {
  if (op->kind == BATCH_FDATASYNC) return fdatasync(op->fd) == 0 ? 0 : -(int64_t)errno;
  char *data = op->data;
  void *bounce = NULL;
  if (op->kind == BATCH_WRITE_DIRECT) {
    if (op->length % 4096 != 0 || op->position % 4096 != 0) return -(int64_t)EINVAL;
    /* Data already page-aligned (a buffer from alignedBuffer) goes to the disk as it is. */
    if (((uintptr_t)op->data & 4095u) != 0) {
      bounce = bounce_for(op->length > 0 ? op->length : 4096);
      if (bounce == NULL) return -(int64_t)ENOMEM;
      memcpy(bounce, op->data, op->length);
      data = bounce;
    }
  }
  size_t done = 0;
  int64_t result = 0;
  while (done < op->length) {
    size_t want = op->length - done;
    /* Buffered writes go in pieces: the page cache sizes its folios by the write (see
     * WRITE_PIECE_BYTES). */
    if (op->kind == BATCH_WRITE && want > WRITE_PIECE_BYTES) want = WRITE_PIECE_BYTES;
    ssize_t n = op->kind == BATCH_READ ? pread(op->fd, data + done, want, op->position + done)
                                       : pwrite(op->fd, data + done, want, op->position + done);
    if (n < 0) {
      if (errno == EINTR) continue;
      result = -(int64_t)errno;
      break;
    }
    if (n == 0) break; /* end of file on read: the caller zero-fills the rest */
    done += (size_t)n;
  }
  if (bounce != NULL && bounce != kept_bounce) free(bounce);
  return result < 0 ? result : (int64_t)done;
}

static void free_aligned(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

/* alignedBuffer(bytes) -> an ArrayBuffer whose memory starts on a 4096-byte boundary, freed
 * when it is collected: received resync data lands in it and goes to an O_DIRECT write
 * without a bounce copy. Throws RangeError for sizes outside 1..1 GiB. */
static napi_value aligned_buffer(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int64_t bytes = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int64(env, argv[0], &bytes) != napi_ok || bytes <= 0 ||
      bytes > ((int64_t)1 << 30)) {
    napi_throw_range_error(env, NULL, "alignedBuffer(bytes): bytes must be 1..1 GiB");
    return NULL;
  }
  void *p = NULL;
  if (posix_memalign(&p, 4096, (size_t)bytes) != 0) {
    napi_throw_error(env, "ENOMEM", "alignedBuffer: out of memory");
    return NULL;
  }
  napi_value ab;
  if (napi_create_external_arraybuffer(env, p, (size_t)bytes, free_aligned, NULL, &ab) != napi_ok) {
    free(p);
    napi_throw_error(env, NULL, "alignedBuffer: cannot wrap the memory");
    return NULL;
  }
  return ab;
}

static void batch_execute(napi_env env, void *data) {
  (void)env;
  batch_call *c = data;
  for (size_t i = 0; i < c->count; i++) c->results[i] = (double)run_op(&c->ops[i]);
}

static void batch_complete(napi_env env, napi_status status, void *data) {
  batch_call *c = data;
  (void)status;
  napi_value cb, global;
  napi_get_reference_value(env, c->callback, &cb);
  napi_get_global(env, &global);
  napi_delete_reference(env, c->callback);
  napi_delete_reference(env, c->results_ref);
  napi_delete_async_work(env, c->work);
  free(c);
  napi_call_function(env, global, cb, 0, NULL, NULL);
}

static napi_value io_batch(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint32_t count = 0;
  bool is_array = false;
  napi_valuetype cb_type;
  napi_typedarray_type rtype;
  size_t rlength = 0;
  void *rdata = NULL;
  if (argc != 3 || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[0], &count) != napi_ok ||
      napi_get_typedarray_info(env, argv[1], &rtype, &rlength, &rdata, NULL, NULL) != napi_ok ||
      rtype != napi_float64_array || rlength < count ||
      napi_typeof(env, argv[2], &cb_type) != napi_ok || cb_type != napi_function) {
    napi_throw_type_error(env, NULL, "ioBatch(ops, results: Float64Array, callback)");
    return NULL;
  }
  batch_call *c = calloc(1, sizeof(*c) + count * sizeof(batch_op));
  if (c == NULL) {
    napi_throw_error(env, NULL, "ioBatch: out of memory");
    return NULL;
  }
  for (uint32_t i = 0; i < count; i++) {
    napi_value op, field;
    int32_t kind, fd;
    int64_t buf_offset = 0, length = 0, position = 0;
    napi_get_element(env, argv[0], i, &op);
    napi_get_element(env, op, 0, &field);
    napi_status s1 = napi_get_value_int32(env, field, &kind);
    napi_get_element(env, op, 1, &field);
    napi_status s2 = napi_get_value_int32(env, field, &fd);
    if (s1 != napi_ok || s2 != napi_ok || kind < BATCH_READ || kind > BATCH_WRITE_DIRECT || fd < 0) {
      free(c);
      napi_throw_type_error(env, NULL, "ioBatch: bad op kind or fd");
      return NULL;
    }
    c->ops[i].kind = kind;
    c->ops[i].fd = fd;
    if (kind != BATCH_FDATASYNC) {
      napi_typedarray_type type;
      size_t data_length = 0;
      void *buf = NULL;
      napi_value v;
      napi_get_element(env, op, 2, &v);
      napi_status s3 = napi_get_typedarray_info(env, v, &type, &data_length, &buf, NULL, NULL);
      napi_get_element(env, op, 3, &v);
      napi_status s4 = napi_get_value_int64(env, v, &buf_offset);
      napi_get_element(env, op, 4, &v);
      napi_status s5 = napi_get_value_int64(env, v, &length);
      napi_get_element(env, op, 5, &v);
      napi_status s6 = napi_get_value_int64(env, v, &position);
      if (s3 != napi_ok || s4 != napi_ok || s5 != napi_ok || s6 != napi_ok ||
          type != napi_uint8_array || buf_offset < 0 || length < 0 || position < 0 ||
          (uint64_t)(buf_offset + length) > data_length) {
        free(c);
        napi_throw_range_error(env, NULL, "ioBatch: op range outside its buffer");
        return NULL;
      }
      c->ops[i].data = (char *)buf + buf_offset;
      c->ops[i].length = (size_t)length;
      c->ops[i].position = position;
    }
  }
  c->count = count;
  c->results = rdata;
  napi_value name;
  napi_create_string_utf8(env, "mirra.ioBatch", NAPI_AUTO_LENGTH, &name);
  napi_create_reference(env, argv[2], 1, &c->callback);
  napi_create_reference(env, argv[1], 1, &c->results_ref);
  napi_create_async_work(env, NULL, name, batch_execute, batch_complete, c, &c->work);
  napi_queue_async_work(env, c->work);
  return NULL;
}

static napi_value rw_nowait(napi_env env, napi_callback_info info, int is_write) {
  size_t argc = 5;
  napi_value argv[5], result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  int64_t buf_offset, length, position;
  void *data = NULL;
  size_t data_length = 0;
  napi_typedarray_type type;
  napi_value arraybuffer;
  size_t byte_offset;
  if (argc != 5 || napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_typedarray_info(env, argv[1], &type, &data_length, &data, &arraybuffer,
                               &byte_offset) != napi_ok ||
      type != napi_uint8_array || napi_get_value_int64(env, argv[2], &buf_offset) != napi_ok ||
      napi_get_value_int64(env, argv[3], &length) != napi_ok ||
      napi_get_value_int64(env, argv[4], &position) != napi_ok) {
    napi_throw_type_error(env, NULL, "nowait IO: (fd, Uint8Array, bufOffset, length, position)");
    return NULL;
  }
  if (buf_offset < 0 || length < 0 || position < 0 || (uint64_t)(buf_offset + length) > data_length) {
    napi_throw_range_error(env, NULL, "nowait IO: range outside the buffer");
    return NULL;
  }
  struct iovec iov = {(char *)data + buf_offset, (size_t)length};
  ssize_t n = is_write ? pwritev2(fd, &iov, 1, position, RWF_NOWAIT)
                       : preadv2(fd, &iov, 1, position, RWF_NOWAIT);
  napi_create_int64(env, n >= 0 ? (int64_t)n : -(int64_t)errno, &result);
  return result;
}

static napi_value pread_nowait(napi_env env, napi_callback_info info) {
  return rw_nowait(env, info, 0);
}

static napi_value pwrite_nowait(napi_env env, napi_callback_info info) {
  return rw_nowait(env, info, 1);
}

static napi_value thread_voluntary_switches(napi_env env, napi_callback_info info) {
  (void)info;
  struct rusage ru;
  napi_value result;
  double n = getrusage(RUSAGE_THREAD, &ru) == 0 ? (double)ru.ru_nvcsw : -1;
  napi_create_double(env, n, &result);
  return result;
}

/* setSendBuffer(fd, bytes) -> the send buffer the kernel granted (SO_SNDBUF), or -errno. */
static napi_value set_send_buffer(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  int32_t fd, bytes;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_value_int32(env, argv[1], &bytes) != napi_ok || fd < 0 || bytes <= 0) {
    napi_throw_type_error(env, NULL, "setSendBuffer(fd, bytes)");
    return NULL;
  }
  int got = 0;
  socklen_t len = sizeof(got);
  int64_t r;
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes)) != 0 ||
      getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &got, &len) != 0)
    r = -(int64_t)errno;
  else
    r = got;
  napi_create_int64(env, r, &result);
  return result;
}

/*
 * spinReadable(fd, microseconds) -> 1 once fd is readable, 0 when the time is up.
 * Adaptive busy polling: a client answering each reply at once (depth 1) sends its next
 * request a few tens of microseconds later; polling for it spares the event loop a sleep in
 * epoll and the cross-CPU wake-up that ends it, which on a virtual machine costs more than
 * the request itself.
 */
static napi_value spin_readable(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  int32_t fd, us;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_value_int32(env, argv[1], &us) != napi_ok || fd < 0 || us < 0 || us > 1000) {
    napi_throw_type_error(env, NULL, "spinReadable(fd, microseconds 0..1000)");
    return NULL;
  }
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  int ready = 0;
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
    if (poll(&p, 1, 0) > 0) {
      ready = 1;
      break;
    }
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t ns = (int64_t)(now.tv_sec - start.tv_sec) * 1000000000 + (now.tv_nsec - start.tv_nsec);
    if (ns >= (int64_t)us * 1000) break;
  }
  napi_get_boolean(env, ready, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_uint32(env, WRITE_PIECE_BYTES, &fn);
  napi_set_named_property(env, exports, "writePieceBytes", fn);
  napi_create_function(env, "spinReadable", NAPI_AUTO_LENGTH, spin_readable, NULL, &fn);
  napi_set_named_property(env, exports, "spinReadable", fn);
  napi_create_function(env, "setSendBuffer", NAPI_AUTO_LENGTH, set_send_buffer, NULL, &fn);
  napi_set_named_property(env, exports, "setSendBuffer", fn);
  napi_create_function(env, "threadVoluntarySwitches", NAPI_AUTO_LENGTH,
                       thread_voluntary_switches, NULL, &fn);
  napi_set_named_property(env, exports, "threadVoluntarySwitches", fn);
  napi_create_function(env, "alignedBuffer", NAPI_AUTO_LENGTH, aligned_buffer, NULL, &fn);
  napi_set_named_property(env, exports, "alignedBuffer", fn);
  napi_create_function(env, "ioBatch", NAPI_AUTO_LENGTH, io_batch, NULL, &fn);
  napi_set_named_property(env, exports, "ioBatch", fn);
  napi_create_function(env, "preadNowait", NAPI_AUTO_LENGTH, pread_nowait, NULL, &fn);
  napi_set_named_property(env, exports, "preadNowait", fn);
  napi_create_function(env, "pwriteNowait", NAPI_AUTO_LENGTH, pwrite_nowait, NULL, &fn);
  napi_set_named_property(env, exports, "pwriteNowait", fn);
  napi_create_function(env, "rangeOp", NAPI_AUTO_LENGTH, range_op, NULL, &fn);
  napi_set_named_property(env, exports, "rangeOp", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
