;; Run: sh plugins/examples/wat/build.sh, then scenarios/web-db.toml with `wasm` of `db` set
;; to plugins/target/lang/wat/db.wasm.
;;
;; db.wat: request/reply of the wasm-ipc plugin ABI (wit/wasm-ipc.wit, version 0.2.0) by hand,
;; as its reference: the database server of the web-db example. Every query on the server port
;; "queries" is an 8-byte little-endian key; the answer is row `key mod rows` of the table
;; that plugins/sdk/rust/src/pattern.rs (`table`) defines, which this module does not keep in
;; memory: it writes the row straight into the asking client's answer window (on shm, that
;; client's reply ring: no copy at all). Config: `rows` (1024), `min_row` (100), `max_row`
;; (65536), `table_seed` (1), as the web workers'. Reports `answered` and `clients_gone`
;; (answers whose client had failed mid-call: the server goes on with the others). `run`
;; returns 0; 4 for a query that is not 8 bytes; 100 - code for a host error code.
;;
;; Only wasm 1.0 (MVP) instructions; no WASI imports; nothing to initialise (no _initialize).
;;
;; Linear memory map:
;;   0 .. 16            never used, so that pointer 0 can mean "no block"
;;   16 .. 1024         the constant strings of the data segments below
;;   1024 .. 1056       CONFIG_BUF: the host copies config values here
;;   2048 .. 4096       SCRATCH: log lines are assembled here
;;   65536 ..           the heap: cabi_realloc hands out 64 KiB-aligned blocks from here; the
;;                      host asks for one window for the requests of all clients and one for
;;                      the answers to each client.
(module
  ;; ---- Imports: module "wasm-ipc:plugin/host@0.2.0", the core lowering of the WIT ----------
  ;; 0.2.0 has every function of 0.1.0 unchanged, plus request/reply.

  ;; port(name: string) -> s32: the handle of port `name`, or -3 unknown-port.
  (import "wasm-ipc:plugin/host@0.2.0" "port"
    (func $port (param $name_ptr i32) (param $name_len i32) (result i32)))
  ;; receive(port: s32) -> s64: on a server port, the next request from any client: ptr << 32
  ;; | len in the port's request window, or -1 closed (every client finished), -2 peer-failed.
  (import "wasm-ipc:plugin/host@0.2.0" "receive"
    (func $receive (param $port i32) (result i64)))
  ;; client(port: s32) -> s32: who sent the request `receive` returned (0-based).
  (import "wasm-ipc:plugin/host@0.2.0" "client"
    (func $client (param $port i32) (result i32)))
  ;; release(port: s32) -> s32: done with the request's bytes.
  (import "wasm-ipc:plugin/host@0.2.0" "release"
    (func $release (param $port i32) (result i32)))
  ;; reply-loan(port: s32, client: s32, len: u32) -> s32: `len` writable bytes for the answer
  ;; to that client's outstanding call, or -1 closed (it is gone), -4 too-large.
  (import "wasm-ipc:plugin/host@0.2.0" "reply-loan"
    (func $reply_loan (param $port i32) (param $client i32) (param $len i32) (result i32)))
  ;; reply(port: s32, len: u32) -> s32: sends the answer; 0, or -1 closed (the client is gone).
  (import "wasm-ipc:plugin/host@0.2.0" "reply"
    (func $reply (param $port i32) (param $len i32) (result i32)))
  ;; config(key: string, out: u32, cap: u32) -> s32: the value's text, its full length, or -5.
  (import "wasm-ipc:plugin/host@0.2.0" "config"
    (func $config (param $key_ptr i32) (param $key_len i32) (param $out i32) (param $cap i32)
      (result i32)))
  ;; report(key: string, value: s64): a figure for the run's report.
  (import "wasm-ipc:plugin/host@0.2.0" "report"
    (func $report (param $key_ptr i32) (param $key_len i32) (param $value i64)))
  ;; log(level: u32, msg: string): 0 error, 1 warn, 2 info, 3 debug, 4 trace.
  (import "wasm-ipc:plugin/host@0.2.0" "log"
    (func $log (param $level i32) (param $msg_ptr i32) (param $msg_len i32)))

  ;; ---- Memory and constants ---------------------------------------------------------------
  (memory (export "memory") 1)

  (data (i32.const 16) "queries")                              ;; port name, 7 bytes
  (data (i32.const 32) "rows")                                 ;; config key, 4
  (data (i32.const 48) "min_row")                              ;; config key, 7
  (data (i32.const 64) "max_row")                              ;; config key, 7
  (data (i32.const 80) "table_seed")                           ;; config key, 10
  (data (i32.const 96) "answered")                             ;; report key, 8
  (data (i32.const 112) "clients_gone")                        ;; report key, 12
  (data (i32.const 128) "config `")                            ;; 8
  (data (i32.const 144) "` is not a decimal integer in range") ;; 35
  (data (i32.const 256) "port \22queries\22 failed: run returns 100 - host code") ;; 50
  (data (i32.const 320) "a query is not an 8-byte key: run returns 4") ;; 43
  (data (i32.const 384) "serving failed: run returns 100 - host code") ;; 43

  (global $CONFIG_BUF i32 (i32.const 1024))
  (global $CONFIG_CAP i32 (i32.const 32))
  (global $SCRATCH i32 (i32.const 2048))

  ;; The payload pattern's multipliers (plugins/sdk/rust/src/pattern.rs).
  (global $INDEX_MUL i64 (i64.const 0x9E3779B97F4A7C15))
  (global $WORD_MUL i64 (i64.const 0xD1B54A32D192ED03))

  ;; The bump allocator's next free address (i64: it may reach exactly 2^32).
  (global $heap (mut i64) (i64.const 65536))

  ;; ---- cabi_realloc: the allocator the host calls to get each port's window ---------------
  ;; cabi_realloc(old_ptr, old_len, align, new_len) -> ptr, with realloc semantics. The host
  ;; calls it as cabi_realloc(0, 0, 65536, window_len) once per port. Blocks are never freed,
  ;; so a window is never reused. Returns 0 when memory runs out or `align` is no power of 2.
  (func $cabi_realloc (export "cabi_realloc")
    (param $old_ptr i32) (param $old_len i32) (param $align i32) (param $new_len i32)
    (result i32)
    (local $ptr i32)
    ;; Shrinking (or freeing, new_len = 0) an existing block: keep it where it is.
    (if (i32.and (i32.ne (local.get $old_ptr) (i32.const 0))
                 (i32.le_u (local.get $new_len) (local.get $old_len)))
      (then (return (local.get $old_ptr))))
    ;; `align` must be a power of two: non-zero, and align & (align - 1) == 0.
    (if (i32.or (i32.eqz (local.get $align))
                (i32.and (local.get $align) (i32.sub (local.get $align) (i32.const 1))))
      (then (return (i32.const 0))))
    ;; A fresh block; 0 when the memory cannot grow.
    (local.set $ptr (call $alloc (local.get $new_len) (local.get $align)))
    (if (i32.eqz (local.get $ptr)) (then (return (i32.const 0))))
    ;; Growing an existing block: copy its bytes over (the old block is simply abandoned).
    (if (local.get $old_ptr)
      (then (call $copy (local.get $ptr) (local.get $old_ptr) (local.get $old_len)) (drop)))
    (local.get $ptr))

  ;; $alloc(len, align) -> ptr: the bump allocator. Every block starts on a 64 KiB boundary
  ;; (or `align`, if larger) and spans whole 64 KiB pages, so the heap end is always
  ;; page-aligned and growing the memory is exact. Fresh pages are zeroed by memory.grow.
  (func $alloc (param $len i32) (param $align i32) (result i32)
    (local $a i64) (local $start i64) (local $end i64) (local $have i64)
    ;; a = max(align, 65536), as i64.
    (local.set $a (i64.extend_i32_u (local.get $align)))
    (if (i64.lt_u (local.get $a) (i64.const 65536)) (then (local.set $a (i64.const 65536))))
    ;; start = heap rounded up to a multiple of a: (heap + a - 1) & -a.
    (local.set $start
      (i64.and (i64.sub (i64.add (global.get $heap) (local.get $a)) (i64.const 1))
               (i64.sub (i64.const 0) (local.get $a))))
    ;; end = start + len rounded up to whole pages.
    (local.set $end
      (i64.add (local.get $start)
               (i64.and (i64.add (i64.extend_i32_u (local.get $len)) (i64.const 65535))
                        (i64.const -65536))))
    ;; Beyond 4 GiB a wasm32 address cannot reach: out of memory.
    (if (i64.gt_u (local.get $end) (i64.const 0x100000000)) (then (return (i32.const 0))))
    ;; have = the memory's current size in bytes (memory.size counts 64 KiB pages).
    (local.set $have (i64.shl (i64.extend_i32_u (memory.size)) (i64.const 16)))
    ;; Grow by the missing pages; memory.grow answers -1 when it cannot.
    (if (i64.gt_u (local.get $end) (local.get $have))
      (then
        (if (i32.eq (memory.grow (i32.wrap_i64
                                   (i64.shr_u (i64.sub (local.get $end) (local.get $have))
                                              (i64.const 16))))
                    (i32.const -1))
          (then (return (i32.const 0))))))
    ;; Taken: the heap continues after the block.
    (global.set $heap (local.get $end))
    (i32.wrap_i64 (local.get $start)))

  ;; $copy(dst, src, len) -> dst + len: copies bytes one by one (MVP has no memory.copy).
  (func $copy (param $dst i32) (param $src i32) (param $len i32) (result i32)
    (block $done
      (loop $byte
        (br_if $done (i32.eqz (local.get $len)))
        (i32.store8 (local.get $dst) (i32.load8_u (local.get $src)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 1)))
        (local.set $src (i32.add (local.get $src) (i32.const 1)))
        (local.set $len (i32.sub (local.get $len) (i32.const 1)))
        (br $byte)))
    (local.get $dst))

  ;; ---- Config -----------------------------------------------------------------------------
  ;; $config_u64(key, key_len, default, max) -> value: the config value of `key` as an
  ;; unsigned decimal integer, or `default` when the key is absent. A value that is not
  ;; decimal digits (surrounding whitespace allowed) or exceeds `max` is logged and traps, as
  ;; the Rust SDK's config_parse panics: a plugin must not run on with a default the scenario
  ;; did not ask for.
  (func $config_u64 (param $key i32) (param $key_len i32) (param $default i64) (param $max i64)
    (result i64)
    (local $len i32) (local $p i32) (local $end i32) (local $digit i64) (local $value i64)
    ;; Ask the host for the text; it returns the full length however much it copied.
    (local.set $len (call $config (local.get $key) (local.get $key_len)
                                  (global.get $CONFIG_BUF) (global.get $CONFIG_CAP)))
    ;; -5 not-found: the key is absent.
    (if (i32.eq (local.get $len) (i32.const -5)) (then (return (local.get $default))))
    ;; Any other negative, or longer than the buffer: no u64 looks like that.
    (if (i32.or (i32.lt_s (local.get $len) (i32.const 0))
                (i32.gt_s (local.get $len) (global.get $CONFIG_CAP)))
      (then (call $bad_config (local.get $key) (local.get $key_len))))
    ;; The text is CONFIG_BUF[p .. end).
    (local.set $p (global.get $CONFIG_BUF))
    (local.set $end (i32.add (local.get $p) (local.get $len)))
    ;; Skip leading whitespace (any byte <= ' ').
    (block $done
      (loop $skip
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (br_if $done (i32.gt_u (i32.load8_u (local.get $p)) (i32.const 32)))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $skip)))
    ;; Drop trailing whitespace.
    (block $done
      (loop $skip
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (br_if $done (i32.gt_u (i32.load8_u (i32.sub (local.get $end) (i32.const 1)))
                               (i32.const 32)))
        (local.set $end (i32.sub (local.get $end) (i32.const 1)))
        (br $skip)))
    ;; No digits at all is malformed.
    (if (i32.ge_u (local.get $p) (local.get $end))
      (then (call $bad_config (local.get $key) (local.get $key_len))))
    ;; value = value * 10 + digit, for each byte, checking for overflow.
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        ;; digit = byte - '0'; unsigned, so anything below '0' wraps to a huge number.
        (local.set $digit (i64.extend_i32_u
                            (i32.sub (i32.load8_u (local.get $p)) (i32.const 48))))
        (if (i64.gt_u (local.get $digit) (i64.const 9))
          (then (call $bad_config (local.get $key) (local.get $key_len))))
        ;; value * 10 overflows u64 when value > (2^64 - 1) / 10.
        (if (i64.gt_u (local.get $value) (i64.const 1844674407370955161))
          (then (call $bad_config (local.get $key) (local.get $key_len))))
        (local.set $value (i64.mul (local.get $value) (i64.const 10)))
        ;; + digit overflows when the sum wraps below the digit.
        (local.set $value (i64.add (local.get $value) (local.get $digit)))
        (if (i64.lt_u (local.get $value) (local.get $digit))
          (then (call $bad_config (local.get $key) (local.get $key_len))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $next)))
    ;; In range for the caller (size is a u32)?
    (if (i64.gt_u (local.get $value) (local.get $max))
      (then (call $bad_config (local.get $key) (local.get $key_len))))
    (local.get $value))

  ;; $bad_config(key, key_len): logs "config `KEY` is not a decimal integer in range" at level
  ;; error and traps. (The value itself is not echoed: cut at CONFIG_CAP bytes it might not be
  ;; valid UTF-8, and the host traps on that.)
  (func $bad_config (param $key i32) (param $key_len i32)
    (local $end i32)
    (local.set $end (call $copy (global.get $SCRATCH) (i32.const 128) (i32.const 8)))
    (local.set $end (call $copy (local.get $end) (local.get $key) (local.get $key_len)))
    (local.set $end (call $copy (local.get $end) (i32.const 144) (i32.const 35)))
    (call $log (i32.const 0) (global.get $SCRATCH)
               (i32.sub (local.get $end) (global.get $SCRATCH)))
    (unreachable))

  ;; ---- The payload pattern ----------------------------------------------------------------
  ;; $store_low(p, n, value): writes the low n bytes of `value` little-endian at p (n <= 8).
  (func $store_low (param $p i32) (param $n i32) (param $value i64)
    ;; A whole word: one store (wasm is little-endian; unaligned stores are allowed).
    (if (i32.ge_u (local.get $n) (i32.const 8))
      (then (i64.store (local.get $p) (local.get $value)) (return)))
    ;; A partial word: byte by byte, lowest first.
    (block $done
      (loop $byte
        (br_if $done (i32.eqz (local.get $n)))
        (i64.store8 (local.get $p) (local.get $value))
        (local.set $value (i64.shr_u (local.get $value) (i64.const 8)))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $byte))))

  ;; $fill(p, len, i, seed): writes message i of `len` bytes at p, as little-endian u64 words:
  ;;   word 0 = i;  word w >= 1 = (i * INDEX_MUL) ^ (w * WORD_MUL) ^ seed  (wrapping);
  ;; a trailing partial word (or a message shorter than 8 bytes) takes the low bytes.
  ;; Like pattern::fill: the head (word 0), the whole words, the tail.
  (func $fill (param $p i32) (param $len i32) (param $i i64) (param $seed i64)
    (local $base i64) (local $m i64)
    ;; Shorter than one word: only the low `len` bytes of i.
    (if (i32.lt_u (local.get $len) (i32.const 8))
      (then (call $store_low (local.get $p) (local.get $len) (local.get $i)) (return)))
    ;; Word 0 is the index itself.
    (i64.store (local.get $p) (local.get $i))
    (local.set $p (i32.add (local.get $p) (i32.const 8)))
    (local.set $len (i32.sub (local.get $len) (i32.const 8)))
    ;; base = i * INDEX_MUL ^ seed: the part every word w >= 1 shares.
    (local.set $base (i64.xor (i64.mul (local.get $i) (global.get $INDEX_MUL))
                              (local.get $seed)))
    ;; Whole words w = 1, 2, ...: m = w * WORD_MUL, kept by repeated (wrapping) addition.
    (block $done
      (loop $word
        (br_if $done (i32.lt_u (local.get $len) (i32.const 8)))
        (local.set $m (i64.add (local.get $m) (global.get $WORD_MUL)))
        (i64.store (local.get $p) (i64.xor (local.get $base) (local.get $m)))
        (local.set $p (i32.add (local.get $p) (i32.const 8)))
        (local.set $len (i32.sub (local.get $len) (i32.const 8)))
        (br $word)))
    ;; The tail: the low `len` (0..7) bytes of the next word.
    (local.set $m (i64.add (local.get $m) (global.get $WORD_MUL)))
    (call $store_low (local.get $p) (local.get $len)
                     (i64.xor (local.get $base) (local.get $m))))

  ;; ---- The table --------------------------------------------------------------------------
  ;; $row_len(key, min, max, seed): the length of row `key`, as pattern::table::row_len:
  ;;   h = word(key, 7, seed ^ 0x7AB1E000); octaves = bit length of max / min;
  ;;   low = min << (h mod octaves); high = min(2 low, max + 1);
  ;;   len = min(low + (h >> 16) mod max(high - low, 1), max).
  (func $row_len (param $key i64) (param $min i64) (param $max i64) (param $seed i64)
    (result i64)
    (local $h i64) (local $low i64) (local $high i64) (local $span i64) (local $len i64)
    (if (i64.lt_u (local.get $min) (i64.const 1)) (then (local.set $min (i64.const 1))))
    (if (i64.lt_u (local.get $max) (local.get $min)) (then (local.set $max (local.get $min))))
    (local.set $h (i64.xor (i64.xor (i64.mul (local.get $key) (global.get $INDEX_MUL))
                                    (i64.mul (i64.const 7) (global.get $WORD_MUL)))
                           (i64.xor (local.get $seed) (i64.const 0x7AB1E000))))
    (local.set $low
      (i64.shl (local.get $min)
               (i64.rem_u (local.get $h)
                          (i64.sub (i64.const 64)
                                   (i64.clz (i64.div_u (local.get $max) (local.get $min)))))))
    (local.set $high (i64.shl (local.get $low) (i64.const 1)))
    (if (i64.gt_u (local.get $high) (i64.add (local.get $max) (i64.const 1)))
      (then (local.set $high (i64.add (local.get $max) (i64.const 1)))))
    (local.set $span (i64.const 1))
    (if (i64.gt_u (local.get $high) (local.get $low))
      (then (local.set $span (i64.sub (local.get $high) (local.get $low)))))
    (local.set $len (i64.add (local.get $low)
                             (i64.rem_u (i64.shr_u (local.get $h) (i64.const 16))
                                        (local.get $span))))
    (if (result i64) (i64.lt_u (local.get $len) (local.get $max))
      (then (local.get $len))
      (else (local.get $max))))

  ;; ---- run: serve until every client is done ----------------------------------------------
  (func $run (export "run") (result i32)
    (local $rows i64) (local $min i64) (local $max i64) (local $seed i64)
    (local $q i32) (local $got i64) (local $ptr i32) (local $key i64) (local $who i32)
    (local $len i32) (local $answer i32) (local $code i32)
    (local $answered i64) (local $gone i64)
    (local.set $rows (call $config_u64 (i32.const 32) (i32.const 4) (i64.const 1024)
                                       (i64.const -1)))
    (if (i64.eqz (local.get $rows)) (then (local.set $rows (i64.const 1))))
    (local.set $min (call $config_u64 (i32.const 48) (i32.const 7) (i64.const 100)
                                      (i64.const 0xFFFFFFFF)))
    (local.set $max (call $config_u64 (i32.const 64) (i32.const 7) (i64.const 65536)
                                      (i64.const 0xFFFFFFFF)))
    (local.set $seed (call $config_u64 (i32.const 80) (i32.const 10) (i64.const 1)
                                       (i64.const -1)))
    (local.set $q (call $port (i32.const 16) (i32.const 7)))
    (if (i32.lt_s (local.get $q) (i32.const 0))
      (then
        (call $log (i32.const 0) (i32.const 256) (i32.const 50))
        (return (call $exit_code (local.get $q)))))
    (block $stop
      (loop $next
        ;; The next request, from whichever client: -1 closed ends the loop cleanly.
        (local.set $got (call $receive (local.get $q)))
        (if (i64.lt_s (local.get $got) (i64.const 0))
          (then
            (if (i64.ne (local.get $got) (i64.const -1))
              (then (local.set $code (i32.wrap_i64 (local.get $got)))))
            (br $stop)))
        ;; An 8-byte key at ptr (ptr << 32 | len).
        (if (i64.ne (i64.and (local.get $got) (i64.const 0xFFFFFFFF)) (i64.const 8))
          (then
            (call $log (i32.const 0) (i32.const 320) (i32.const 43))
            (return (i32.const 4))))
        (local.set $ptr (i32.wrap_i64 (i64.shr_u (local.get $got) (i64.const 32))))
        (local.set $key (i64.rem_u (i64.load (local.get $ptr)) (local.get $rows)))
        (local.set $who (call $client (local.get $q)))
        (drop (call $release (local.get $q)))
        ;; The answer is written in place, in the asking client's answer window.
        (local.set $len (i32.wrap_i64 (call $row_len (local.get $key) (local.get $min)
                                                     (local.get $max) (local.get $seed))))
        (local.set $answer (call $reply_loan (local.get $q) (local.get $who) (local.get $len)))
        (if (i32.eq (local.get $answer) (i32.const -1))
          (then (local.set $gone (i64.add (local.get $gone) (i64.const 1))) (br $next)))
        (if (i32.lt_s (local.get $answer) (i32.const 0))
          (then (local.set $code (local.get $answer)) (br $stop)))
        (call $fill (local.get $answer) (local.get $len) (local.get $key) (local.get $seed))
        (local.set $code (call $reply (local.get $q) (local.get $len)))
        (if (i32.eq (local.get $code) (i32.const -1))
          (then (local.set $code (i32.const 0))
                (local.set $gone (i64.add (local.get $gone) (i64.const 1)))
                (br $next)))
        (br_if $stop (i32.lt_s (local.get $code) (i32.const 0)))
        (local.set $answered (i64.add (local.get $answered) (i64.const 1)))
        (br $next)))
    (call $report (i32.const 96) (i32.const 8) (local.get $answered))
    (call $report (i32.const 112) (i32.const 12) (local.get $gone))
    (if (i32.lt_s (local.get $code) (i32.const 0))
      (then
        (call $log (i32.const 0) (i32.const 384) (i32.const 43))
        (return (call $exit_code (local.get $code)))))
    (i32.const 0))

  ;; $exit_code(code) -> what run returns for a negative host code, as every SDK does:
  ;; 100 - code for the named codes -1 ..= -5 (101 closed ... 105 not-found), else 199.
  (func $exit_code (param $code i32) (result i32)
    (if (result i32) (i32.ge_s (local.get $code) (i32.const -5))
      (then (i32.sub (i32.const 100) (local.get $code)))
      (else (i32.const 199))))
)
