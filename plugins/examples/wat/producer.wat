;; Run: sh plugins/examples/wat/build.sh && wasm-ipc run SCENARIO (or point `wasm` at this .wat).
;;
;; producer.wat: the wasm-ipc plugin ABI (wit/wasm-ipc.wit, version 0.1.0) by hand, as its
;; reference. Streams `count` pattern messages of `size` bytes on port "out", exactly like
;; plugins/examples/rust/producer (fill = full, no rate). Config: `count` (1000), `size` (4096),
;; `seed` (0). Stops early, without error, when every consumer is gone (closed). Reports `sent`
;; and `bytes`. `run` returns 0, or 100 - code for a host error code (101 closed, 102
;; peer-failed, 103 unknown-port, 104 too-large; 199 for any other code).
;;
;; Only wasm 1.0 (MVP) instructions; no WASI imports; nothing to initialise (no _initialize).
;;
;; Linear memory map:
;;   0 .. 16            never used, so that pointer 0 can mean "no block"
;;   16 .. 1024         the constant strings of the data segments below
;;   1024 .. 1056       CONFIG_BUF: the host copies config values here
;;   2048 .. 4096       SCRATCH: log lines are assembled here
;;   65536 ..           the heap: cabi_realloc hands out 64 KiB-aligned blocks from here,
;;                      growing the memory as it goes; the host asks for one per port (its
;;                      "window") and on shm maps the shared slots over it.
(module
  ;; ---- Imports: module "wasm-ipc:plugin/host@0.1.0", the core lowering of the WIT ----------
  ;; A WIT `string` lowers to (ptr: i32, len: i32), s32/u32 to i32, s64/u64 to i64.

  ;; port(name: string) -> s32: the handle of port `name`, or -3 unknown-port.
  (import "wasm-ipc:plugin/host@0.1.0" "port"
    (func $port (param $name_ptr i32) (param $name_len i32) (result i32)))
  ;; loan(port: s32, len: u32) -> s32: pointer to `len` writable bytes in the port's window;
  ;; blocks while the channel is full; negative: -1 closed, -2 peer-failed, -4 too-large.
  (import "wasm-ipc:plugin/host@0.1.0" "loan"
    (func $loan (param $port i32) (param $len i32) (result i32)))
  ;; publish(port: s32, len: u32) -> s32: sends the first `len` bytes of the current loan;
  ;; 0, or negative: -1 closed, -2 peer-failed.
  (import "wasm-ipc:plugin/host@0.1.0" "publish"
    (func $publish (param $port i32) (param $len i32) (result i32)))
  ;; config(key: string, out: u32, cap: u32) -> s32: copies the value's text (at most `cap`
  ;; bytes) to `out`; returns its full length, or -5 not-found.
  (import "wasm-ipc:plugin/host@0.1.0" "config"
    (func $config (param $key_ptr i32) (param $key_len i32) (param $out i32) (param $cap i32)
      (result i32)))
  ;; report(key: string, value: s64): a figure for the run's report.
  (import "wasm-ipc:plugin/host@0.1.0" "report"
    (func $report (param $key_ptr i32) (param $key_len i32) (param $value i64)))
  ;; log(level: u32, msg: string): 0 error, 1 warn, 2 info, 3 debug, 4 trace.
  (import "wasm-ipc:plugin/host@0.1.0" "log"
    (func $log (param $level i32) (param $msg_ptr i32) (param $msg_len i32)))

  ;; ---- Memory and constants ---------------------------------------------------------------
  ;; One page (64 KiB) for the constants below; the heap grows past it. No maximum.
  (memory (export "memory") 1)

  ;; Strings (UTF-8, no terminator: every use passes its length).
  (data (i32.const 16) "out")                                  ;; port name, 3 bytes
  (data (i32.const 32) "count")                                ;; config key, 5
  (data (i32.const 48) "size")                                 ;; config key, 4
  (data (i32.const 64) "seed")                                 ;; config key, 4
  (data (i32.const 80) "sent")                                 ;; report key, 4
  (data (i32.const 96) "bytes")                                ;; report key, 5
  (data (i32.const 128) "config `")                            ;; 8
  (data (i32.const 144) "` is not a decimal integer in range") ;; 35
  (data (i32.const 256) "every consumer is gone: stopping early") ;; 38
  (data (i32.const 320) "port \22out\22 failed: run returns 100 - host code") ;; 46
  (data (i32.const 448) "loan/publish failed: run returns 100 - host code") ;; 48

  (global $CONFIG_BUF i32 (i32.const 1024))  ;; where config values land
  (global $CONFIG_CAP i32 (i32.const 32))    ;; enough for any u64 (20 digits)
  (global $SCRATCH i32 (i32.const 2048))     ;; where log lines are assembled

  ;; The payload pattern's multipliers (plugins/sdk/rust/src/pattern.rs).
  (global $INDEX_MUL i64 (i64.const 0x9E3779B97F4A7C15))  ;; times the message index
  (global $WORD_MUL i64 (i64.const 0xD1B54A32D192ED03))   ;; times the word number

  ;; The bump allocator's next free address. i64, because after the last possible page it is
  ;; exactly 2^32, which an i32 cannot hold.
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

  ;; ---- run: the plugin's main loop --------------------------------------------------------
  (func $run (export "run") (result i32)
    (local $count i64) (local $size i32) (local $seed i64)
    (local $out i32) (local $i i64) (local $ptr i32) (local $code i32)
    ;; Config, as the Rust producer reads it (u64, usize = u32 on wasm32, u64).
    (local.set $count (call $config_u64 (i32.const 32) (i32.const 5) (i64.const 1000)
                                        (i64.const -1)))
    (local.set $size (i32.wrap_i64
                       (call $config_u64 (i32.const 48) (i32.const 4) (i64.const 4096)
                                         (i64.const 0xFFFFFFFF))))
    (local.set $seed (call $config_u64 (i32.const 64) (i32.const 4) (i64.const 0)
                                       (i64.const -1)))
    ;; The output port's handle; negative (unknown-port) ends the run with 103.
    (local.set $out (call $port (i32.const 16) (i32.const 3)))
    (if (i32.lt_s (local.get $out) (i32.const 0))
      (then
        (call $log (i32.const 0) (i32.const 320) (i32.const 46))
        (return (call $exit_code (local.get $out)))))
    ;; for i in 0..count: loan, fill, publish. $code stays 0 unless a call fails.
    (block $stop
      (loop $next
        (br_if $stop (i64.ge_u (local.get $i) (local.get $count)))
        ;; Loan `size` bytes in the window (blocks while the channel is full).
        (local.set $ptr (call $loan (local.get $out) (local.get $size)))
        (if (i32.lt_s (local.get $ptr) (i32.const 0))
          (then (local.set $code (local.get $ptr)) (br $stop)))
        ;; Write message i into the loan: on shm this is the shared slot itself.
        (call $fill (local.get $ptr) (local.get $size) (local.get $i) (local.get $seed))
        ;; Hand it over; from now on the loan belongs to the consumers.
        (local.set $code (call $publish (local.get $out) (local.get $size)))
        (br_if $stop (i32.lt_s (local.get $code) (i32.const 0)))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $next)))
    ;; Report what was sent (i counts published messages), also when a call failed.
    (call $report (i32.const 80) (i32.const 4) (local.get $i))
    (call $report (i32.const 96) (i32.const 5)
                  (i64.mul (local.get $i) (i64.extend_i32_u (local.get $size))))
    ;; -1 closed: every consumer is gone. Not an error: stop early and succeed.
    (if (i32.eq (local.get $code) (i32.const -1))
      (then
        (call $log (i32.const 2) (i32.const 256) (i32.const 38))
        (return (i32.const 0))))
    ;; Any other negative code fails the run.
    (if (i32.lt_s (local.get $code) (i32.const 0))
      (then
        (call $log (i32.const 0) (i32.const 448) (i32.const 48))
        (return (call $exit_code (local.get $code)))))
    (i32.const 0))

  ;; $exit_code(code) -> what run returns for a negative host code, as every SDK does:
  ;; 100 - code for the named codes -1 ..= -5 (101 closed ... 105 not-found), else 199.
  (func $exit_code (param $code i32) (result i32)
    (if (result i32) (i32.ge_s (local.get $code) (i32.const -5))
      (then (i32.sub (i32.const 100) (local.get $code)))
      (else (i32.const 199))))
)
