;; Run: sh plugins/examples/wat/build.sh && wasm-ipc run SCENARIO (or point `wasm` at this .wat).
;;
;; consumer.wat: the wasm-ipc plugin ABI (wit/wasm-ipc.wit, version 0.1.0) by hand, as its
;; reference. Receives on port "in" until the channel closes and checks every message against
;; the payload pattern by the index in its own word 0, like plugins/examples/rust/consumer
;; (check = full, ordered, xor = 0; mismatches are counted, not fatal at the first one).
;; Config: `seed` (0), `expect` (absent: any count). Reports `received`, `bytes`, `mismatches`
;; and `checksum` (wrapping u64 sum of every message's little-endian u64 words, the last
;; partial word zero-padded). `run` returns 0; 2 when any message mismatched; 3 when `expect`
;; is set and a different number arrived; 100 - code for a host error code (102 peer-failed,
;; 103 unknown-port; 199 for any other code).
;;
;; A received message is READ-ONLY: on shm the host maps the consumer's window read-only, so
;; this module only ever loads from it.
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
;;                      "window") and on shm maps the shared slots over it, read-only.
(module
  ;; ---- Imports: module "wasm-ipc:plugin/host@0.1.0", the core lowering of the WIT ----------
  ;; A WIT `string` lowers to (ptr: i32, len: i32), s32/u32 to i32, s64/u64 to i64.

  ;; port(name: string) -> s32: the handle of port `name`, or -3 unknown-port.
  (import "wasm-ipc:plugin/host@0.1.0" "port"
    (func $port (param $name_ptr i32) (param $name_len i32) (result i32)))
  ;; receive(port: s32) -> s64: blocks until a message arrives; ptr << 32 | len of it in the
  ;; port's window, or negative: -1 closed (every producer finished, channel drained),
  ;; -2 peer-failed.
  (import "wasm-ipc:plugin/host@0.1.0" "receive"
    (func $receive (param $port i32) (result i64)))
  ;; release(port: s32) -> s32: done with the received message; the host may reuse its bytes.
  (import "wasm-ipc:plugin/host@0.1.0" "release"
    (func $release (param $port i32) (result i32)))
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
  (data (i32.const 16) "in")                                   ;; port name, 2 bytes
  (data (i32.const 32) "seed")                                 ;; config key, 4
  (data (i32.const 48) "expect")                               ;; config key, 6
  (data (i32.const 64) "received")                             ;; report key, 8
  (data (i32.const 80) "bytes")                                ;; report key, 5
  (data (i32.const 96) "mismatches")                           ;; report key, 10
  (data (i32.const 112) "checksum")                            ;; report key, 8
  (data (i32.const 128) "config `")                            ;; 8
  (data (i32.const 144) "` is not a decimal integer in range") ;; 35
  (data (i32.const 192) "port \22in\22 failed: run returns 100 - host code") ;; 45
  (data (i32.const 256) "receive failed: run returns 100 - host code") ;; 43
  (data (i32.const 320) "a message does not match its pattern or arrives out of order") ;; 60
  (data (i32.const 384) "mismatches found: run returns 2") ;; 31
  (data (i32.const 448) "received a different count than expect: run returns 3") ;; 53

  (global $CONFIG_BUF i32 (i32.const 1024))  ;; where config values land
  (global $CONFIG_CAP i32 (i32.const 32))    ;; enough for any u64 (20 digits)
  (global $SCRATCH i32 (i32.const 2048))     ;; where log lines are assembled

  ;; The payload pattern's multipliers (plugins/sdk/rust/src/pattern.rs).
  (global $INDEX_MUL i64 (i64.const 0x9E3779B97F4A7C15))  ;; times the message index
  (global $WORD_MUL i64 (i64.const 0xD1B54A32D192ED03))   ;; times the word number

  ;; Mismatches logged one by one (as the Rust consumer does); later ones are only counted.
  (global $LOGGED_MISMATCHES i64 (i64.const 5))

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
  ;; $load_low(p, n) -> the n bytes at p (n <= 8) as a little-endian u64, zero-padded. Loads
  ;; only: the message may be mapped read-only, and bytes past its end are not ours to read.
  (func $load_low (param $p i32) (param $n i32) (result i64)
    (local $value i64)
    ;; A whole word: one load (wasm is little-endian; unaligned loads are allowed).
    (if (i32.ge_u (local.get $n) (i32.const 8))
      (then (return (i64.load (local.get $p)))))
    ;; A partial word: byte by byte from the highest, shifting each one in at the bottom.
    (block $done
      (loop $byte
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (local.set $value
          (i64.or (i64.shl (local.get $value) (i64.const 8))
                  (i64.load8_u (i32.add (local.get $p) (local.get $n)))))
        (br $byte)))
    (local.get $value))

  ;; $low_mask(n) -> the low n bytes of a u64 set (n <= 8): all ones for a whole word, else
  ;; (1 << 8n) - 1. (A shift by 64 is a shift by 0 in wasm, hence the special case.)
  (func $low_mask (param $n i32) (result i64)
    (if (result i64) (i32.ge_u (local.get $n) (i32.const 8))
      (then (i64.const -1))
      (else (i64.sub (i64.shl (i64.const 1) (i64.extend_i32_u (i32.shl (local.get $n)
                                                                          (i32.const 3))))
                     (i64.const 1)))))

  ;; ---- run: the plugin's main loop --------------------------------------------------------
  (func $run (export "run") (result i32)
    (local $seed i64) (local $expect i64) (local $has_expect i32) (local $in i32)
    (local $msg i64) (local $ptr i32) (local $len i32) (local $code i32)
    (local $p i32) (local $rest i32) (local $n i32)
    (local $index i64) (local $width i64) (local $next i64) (local $bad i32)
    (local $base i64) (local $m i64) (local $got i64) (local $diff i64)
    (local $received i64) (local $bytes i64) (local $mismatches i64) (local $checksum i64)
    ;; Config: seed (u64, default 0); expect is optional, so first ask whether it is there:
    ;; with cap 0 the host copies nothing and answers the length, or -5 not-found.
    (local.set $seed (call $config_u64 (i32.const 32) (i32.const 4) (i64.const 0)
                                       (i64.const -1)))
    (local.set $has_expect
      (i32.ne (call $config (i32.const 48) (i32.const 6) (i32.const 0) (i32.const 0))
              (i32.const -5)))
    (local.set $expect (call $config_u64 (i32.const 48) (i32.const 6) (i64.const 0)
                                         (i64.const -1)))
    ;; The input port's handle; negative (unknown-port) ends the run with 103.
    (local.set $in (call $port (i32.const 16) (i32.const 2)))
    (if (i32.lt_s (local.get $in) (i32.const 0))
      (then
        (call $log (i32.const 0) (i32.const 192) (i32.const 45))
        (return (call $exit_code (local.get $in)))))
    ;; Receive until closed. $code stays 0 unless receive fails otherwise.
    (block $stop
      (loop $next_msg
        ;; Blocks until a message arrives (or the channel closes).
        (local.set $msg (call $receive (local.get $in)))
        ;; Negative: -1 closed ends the loop normally; anything else is an error.
        (if (i64.lt_s (local.get $msg) (i64.const 0))
          (then
            ;; (A code below -5 is no named one; i32 MIN keeps it negative and maps to 199.)
            (if (i64.ne (local.get $msg) (i64.const -1))
              (then (local.set $code (select (i32.wrap_i64 (local.get $msg))
                                             (i32.const 0x80000000)
                                             (i64.ge_s (local.get $msg) (i64.const -5))))))
            (br $stop)))
        ;; Decode: pointer in the high 32 bits, length in the low 32 bits.
        (local.set $ptr (i32.wrap_i64 (i64.shr_u (local.get $msg) (i64.const 32))))
        (local.set $len (i32.wrap_i64 (local.get $msg)))
        (local.set $received (i64.add (local.get $received) (i64.const 1)))
        (local.set $bytes (i64.add (local.get $bytes) (i64.extend_i32_u (local.get $len))))

        ;; Word 0: the message's index (zero-padded when the message is shorter than 8 bytes).
        (local.set $n (select (local.get $len) (i32.const 8)
                              (i32.lt_u (local.get $len) (i32.const 8))))
        (local.set $index (call $load_low (local.get $ptr) (local.get $n)))
        ;; The checksum adds every word as it is, word 0 included.
        (local.set $checksum (i64.add (local.get $checksum) (local.get $index)))

        ;; Order: a short message carries only the low bytes of its index, so compare those:
        ;; bad = index != next & width.
        (local.set $width (call $low_mask (local.get $n)))
        (local.set $bad (i64.ne (local.get $index)
                                (i64.and (local.get $next) (local.get $width))))
        ;; The next expected index: next + 1 when in order, else resynchronise on this one.
        (local.set $next
          (select (i64.add (local.get $index) (i64.const 1))
                  (i64.add (local.get $next) (i64.const 1))
                  (local.get $bad)))

        ;; Content: words w >= 1 must be base ^ w * WORD_MUL with base = index * INDEX_MUL ^
        ;; seed, a trailing partial word compared on its low bytes only. diff ORs together
        ;; every difference, so it stays 0 exactly when the message matches. (Word 0 matches
        ;; by construction: it is where the index came from.)
        (local.set $base (i64.xor (i64.mul (local.get $index) (global.get $INDEX_MUL))
                                  (local.get $seed)))
        (local.set $m (i64.const 0))
        (local.set $diff (i64.const 0))
        (local.set $p (i32.add (local.get $ptr) (local.get $n)))
        (local.set $rest (i32.sub (local.get $len) (local.get $n)))
        ;; Whole words: m = w * WORD_MUL, kept by repeated (wrapping) addition.
        (block $done
          (loop $word
            (br_if $done (i32.lt_u (local.get $rest) (i32.const 8)))
            (local.set $m (i64.add (local.get $m) (global.get $WORD_MUL)))
            (local.set $got (i64.load (local.get $p)))
            (local.set $diff (i64.or (local.get $diff)
                                     (i64.xor (local.get $got)
                                              (i64.xor (local.get $base) (local.get $m)))))
            (local.set $checksum (i64.add (local.get $checksum) (local.get $got)))
            (local.set $p (i32.add (local.get $p) (i32.const 8)))
            (local.set $rest (i32.sub (local.get $rest) (i32.const 8)))
            (br $word)))
        ;; The tail (rest = 0..7 bytes): compared and summed on its low bytes, zero-padded.
        (if (local.get $rest)
          (then
            (local.set $m (i64.add (local.get $m) (global.get $WORD_MUL)))
            (local.set $got (call $load_low (local.get $p) (local.get $rest)))
            (local.set $diff
              (i64.or (local.get $diff)
                      (i64.xor (local.get $got)
                               (i64.and (i64.xor (local.get $base) (local.get $m))
                                        (call $low_mask (local.get $rest))))))
            (local.set $checksum (i64.add (local.get $checksum) (local.get $got)))))

        ;; Done reading: release the message so the host can reuse its slot. (Like the Rust
        ;; SDK's drop, its answer is not checked: a failure shows up at the next receive.)
        (drop (call $release (local.get $in)))

        ;; Count a mismatch (out of order or wrong content); log the first few.
        (if (i32.or (local.get $bad) (i64.ne (local.get $diff) (i64.const 0)))
          (then
            (local.set $mismatches (i64.add (local.get $mismatches) (i64.const 1)))
            (if (i64.le_u (local.get $mismatches) (global.get $LOGGED_MISMATCHES))
              (then (call $log (i32.const 1) (i32.const 320) (i32.const 60))))))
        (br $next_msg)))

    ;; Report, also when the run fails.
    (call $report (i32.const 64) (i32.const 8) (local.get $received))
    (call $report (i32.const 80) (i32.const 5) (local.get $bytes))
    (call $report (i32.const 96) (i32.const 10) (local.get $mismatches))
    (call $report (i32.const 112) (i32.const 8) (local.get $checksum))
    ;; A host error (peer-failed, ...) fails the run with 100 - code.
    (if (i32.lt_s (local.get $code) (i32.const 0))
      (then
        (call $log (i32.const 0) (i32.const 256) (i32.const 43))
        (return (call $exit_code (local.get $code)))))
    ;; Any mismatch: 2.
    (if (i64.ne (local.get $mismatches) (i64.const 0))
      (then
        (call $log (i32.const 0) (i32.const 384) (i32.const 31))
        (return (i32.const 2))))
    ;; `expect` given and not met: 3.
    (if (i32.and (local.get $has_expect)
                 (i64.ne (local.get $received) (local.get $expect)))
      (then
        (call $log (i32.const 0) (i32.const 448) (i32.const 53))
        (return (i32.const 3))))
    (i32.const 0))

  ;; $exit_code(code) -> what run returns for a negative host code, as every SDK does:
  ;; 100 - code for the named codes -1 ..= -5 (101 closed ... 105 not-found), else 199.
  (func $exit_code (param $code i32) (result i32)
    (if (result i32) (i32.ge_s (local.get $code) (i32.const -5))
      (then (i32.sub (i32.const 100) (local.get $code)))
      (else (i32.const 199))))
)
