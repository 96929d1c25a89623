;; {{name}}: a wasm-ipc plugin in hand-written WebAssembly text. Build: `sh build.sh`;
;; run: `wasm-ipc compare scenario.toml` (the host also loads {{name}}.wat directly).
;;
;; The same module plays both parts of the generated scenario: it looks up its ports, and
;; publishes on "out" and/or receives on "in", whichever the scenario gives it.
;;   out: `count` (100) pattern messages of `size` (64) bytes; reports "sent".
;;   in:  receives until closed, checks message n against pattern n; reports "received" and
;;        "mismatches"; `run` returns 2 on a mismatch.
;; Config `seed` (0) seeds the pattern. A host error code c makes `run` return 100 - c.
;; The ABI is wit/wasm-ipc.wit in {{root}}; the commented reference plugins are
;; {{root}}/plugins/examples/wat/{producer,consumer}.wat.
(module ${{name}}
  ;; Host functions (module "wasm-ipc:plugin/host@0.1.0"); a string is (ptr, len).
  (import "wasm-ipc:plugin/host@0.1.0" "port"     ;; port(name) -> handle | -3 unknown-port
    (func $port (param i32 i32) (result i32)))
  (import "wasm-ipc:plugin/host@0.1.0" "loan"     ;; loan(port, len) -> ptr | negative code
    (func $loan (param i32 i32) (result i32)))
  (import "wasm-ipc:plugin/host@0.1.0" "publish"  ;; publish(port, len) -> 0 | negative code
    (func $publish (param i32 i32) (result i32)))
  (import "wasm-ipc:plugin/host@0.1.0" "receive"  ;; receive(port) -> ptr << 32 | len | negative
    (func $receive (param i32) (result i64)))
  (import "wasm-ipc:plugin/host@0.1.0" "release"  ;; release(port) -> 0 | negative code
    (func $release (param i32) (result i32)))
  (import "wasm-ipc:plugin/host@0.1.0" "config"   ;; config(key, out, cap) -> len | -5 not-found
    (func $config (param i32 i32 i32 i32) (result i32)))
  (import "wasm-ipc:plugin/host@0.1.0" "report"   ;; report(key, value)
    (func $report (param i32 i32 i64)))

  ;; Page 0 holds these constants; the host's windows are allocated after it.
  (memory (export "memory") 1)
  (data (i32.const 16) "out")        ;; 3 bytes
  (data (i32.const 24) "in")         ;; 2
  (data (i32.const 32) "seed")       ;; 4
  (data (i32.const 40) "count")      ;; 5
  (data (i32.const 48) "size")       ;; 4
  (data (i32.const 64) "sent")       ;; 4
  (data (i32.const 80) "received")   ;; 8
  (data (i32.const 96) "mismatches") ;; 10
  ;; 1024..1056: config values land here.

  ;; cabi_realloc(old_ptr, old_len, align, new_len) -> ptr. The host calls it once per port as
  ;; (0, 0, 65536, window_len). Each block is fresh pages grown at the end of memory, so it is
  ;; 64 KiB-aligned and never reused; memory.grow answers the old size in pages = the block's
  ;; first page, or -1 when the memory cannot grow. Resizing old blocks is not supported.
  (func (export "cabi_realloc") (param $old_ptr i32) (param $old_len i32) (param $align i32)
    (param $new_len i32) (result i32)
    (local $page i32)
    (if (i32.or (local.get $old_ptr) (i32.gt_u (local.get $align) (i32.const 65536)))
      (then (return (i32.const 0))))
    ;; Pages needed: new_len / 65536, rounded up.
    (local.set $page (memory.grow
      (i32.add (i32.shr_u (local.get $new_len) (i32.const 16))
               (i32.ne (i32.and (local.get $new_len) (i32.const 0xFFFF)) (i32.const 0)))))
    (if (i32.eq (local.get $page) (i32.const -1)) (then (return (i32.const 0))))
    (i32.shl (local.get $page) (i32.const 16)))

  ;; $cfg(key, key_len, default) -> the config value as an unsigned decimal integer (traps on
  ;; anything but digits; no overflow check), or `default` when the key is absent.
  (func $cfg (param $key i32) (param $key_len i32) (param $default i64) (result i64)
    (local $len i32) (local $p i32) (local $digit i32) (local $value i64)
    (local.set $len (call $config (local.get $key) (local.get $key_len)
                                  (i32.const 1024) (i32.const 32)))
    (if (i32.eq (local.get $len) (i32.const -5)) (then (return (local.get $default))))
    (if (i32.or (i32.lt_s (local.get $len) (i32.const 1)) (i32.gt_s (local.get $len) (i32.const 32)))
      (then unreachable))
    (loop $next
      (local.set $digit (i32.sub (i32.load8_u (i32.add (i32.const 1024) (local.get $p)))
                                 (i32.const 48)))  ;; byte - '0'
      (if (i32.gt_u (local.get $digit) (i32.const 9)) (then unreachable))
      (local.set $value (i64.add (i64.mul (local.get $value) (i64.const 10))
                                 (i64.extend_i32_u (local.get $digit))))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $p) (local.get $len))))
    (local.get $value))

  ;; $pattern(p, len, i, seed, write) -> diff: walks message i of `len` bytes at p, little-endian
  ;; u64 words: word 0 = i, word w = (i * 0x9E3779B97F4A7C15) ^ (w * 0xD1B54A32D192ED03) ^ seed;
  ;; a last partial word keeps its low bytes. write = 1 stores the message (returns 0);
  ;; write = 0 only reads and returns the OR of all differences (0 = the message matches).
  (func $pattern (param $p i32) (param $len i32) (param $i i64) (param $seed i64)
    (param $write i32) (result i64)
    (local $base i64) (local $m i64) (local $word i64) (local $n i32) (local $k i32)
    (local $got i64) (local $diff i64)
    (local.set $base (i64.xor (i64.mul (local.get $i) (i64.const 0x9E3779B97F4A7C15))
                              (local.get $seed)))
    (local.set $word (local.get $i))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $len)))
        ;; n = min(len, 8) bytes of this word; byte k is (word >> 8k) & 0xFF.
        (local.set $n (select (local.get $len) (i32.const 8)
                              (i32.lt_u (local.get $len) (i32.const 8))))
        (local.set $k (i32.const 0))
        (loop $byte
          (local.set $got (i64.shr_u (local.get $word) (i64.extend_i32_u
                                                          (i32.shl (local.get $k) (i32.const 3)))))
          (if (local.get $write)
            (then (i64.store8 (i32.add (local.get $p) (local.get $k)) (local.get $got)))
            (else (local.set $diff (i64.or (local.get $diff)
              (i64.and (i64.xor (local.get $got)
                                (i64.load8_u (i32.add (local.get $p) (local.get $k))))
                       (i64.const 0xFF))))))
          (local.set $k (i32.add (local.get $k) (i32.const 1)))
          (br_if $byte (i32.lt_u (local.get $k) (local.get $n))))
        (local.set $p (i32.add (local.get $p) (i32.const 8)))
        (local.set $len (i32.sub (local.get $len) (local.get $n)))
        ;; Next word w: m = w * 0xD1B54A32D192ED03 (wrapping), word = base ^ m.
        (local.set $m (i64.add (local.get $m) (i64.const 0xD1B54A32D192ED03)))
        (local.set $word (i64.xor (local.get $base) (local.get $m)))
        (br $next)))
    (local.get $diff))

  ;; What `run` returns for a negative host code: 100 - code (101 closed ... 105 not-found).
  (func $fail (param $code i32) (result i32)
    (i32.sub (i32.const 100) (local.get $code)))

  (func (export "run") (result i32)
    (local $seed i64) (local $handle i32) (local $count i64) (local $size i32) (local $i i64)
    (local $ret i32) (local $msg i64) (local $mismatches i64)
    (local.set $seed (call $cfg (i32.const 32) (i32.const 4) (i64.const 0)))

    ;; Producer part: only if the scenario gives this instance an "out" port.
    (local.set $handle (call $port (i32.const 16) (i32.const 3)))
    (if (i32.ge_s (local.get $handle) (i32.const 0))
      (then
        (local.set $count (call $cfg (i32.const 40) (i32.const 5) (i64.const 100)))
        (local.set $size (i32.wrap_i64 (call $cfg (i32.const 48) (i32.const 4) (i64.const 64))))
        (block $stop
          (loop $next
            (br_if $stop (i64.ge_u (local.get $i) (local.get $count)))
            ;; A loan is a slice of the port's window: on shm, the shared slot itself.
            (local.set $ret (call $loan (local.get $handle) (local.get $size)))
            (br_if $stop (i32.eq (local.get $ret) (i32.const -1)))  ;; every consumer is gone
            (if (i32.lt_s (local.get $ret) (i32.const 0))
              (then (return (call $fail (local.get $ret)))))
            (drop (call $pattern (local.get $ret) (local.get $size) (local.get $i)
                                 (local.get $seed) (i32.const 1)))
            (local.set $ret (call $publish (local.get $handle) (local.get $size)))
            (br_if $stop (i32.eq (local.get $ret) (i32.const -1)))
            (if (i32.lt_s (local.get $ret) (i32.const 0))
              (then (return (call $fail (local.get $ret)))))
            (local.set $i (i64.add (local.get $i) (i64.const 1)))
            (br $next)))
        (call $report (i32.const 64) (i32.const 4) (local.get $i)))
      (else  ;; -3 unknown-port: no "out" here; any other code is an error.
        (if (i32.ne (local.get $handle) (i32.const -3))
          (then (return (call $fail (local.get $handle)))))))

    ;; Consumer part: only if the scenario gives this instance an "in" port.
    (local.set $handle (call $port (i32.const 24) (i32.const 2)))
    (if (i32.ge_s (local.get $handle) (i32.const 0))
      (then
        (local.set $i (i64.const 0))  ;; now: messages received
        (block $stop
          (loop $next
            (local.set $msg (call $receive (local.get $handle)))
            (br_if $stop (i64.eq (local.get $msg) (i64.const -1)))  ;; closed and drained
            (if (i64.lt_s (local.get $msg) (i64.const 0))
              (then (return (call $fail (i32.wrap_i64 (local.get $msg))))))
            ;; ptr = msg >> 32, len = low 32 bits. Read only: never write into a message.
            (if (i64.ne (call $pattern (i32.wrap_i64 (i64.shr_u (local.get $msg) (i64.const 32)))
                                       (i32.wrap_i64 (local.get $msg))
                                       (local.get $i) (local.get $seed) (i32.const 0))
                        (i64.const 0))
              (then (local.set $mismatches (i64.add (local.get $mismatches) (i64.const 1)))))
            (local.set $i (i64.add (local.get $i) (i64.const 1)))
            (drop (call $release (local.get $handle)))  ;; the slot may be reused now
            (br $next)))
        (call $report (i32.const 80) (i32.const 8) (local.get $i))
        (call $report (i32.const 96) (i32.const 10) (local.get $mismatches))
        (if (i64.ne (local.get $mismatches) (i64.const 0)) (then (return (i32.const 2)))))
      (else
        (if (i32.ne (local.get $handle) (i32.const -3))
          (then (return (call $fail (local.get $handle)))))))
    (i32.const 0))
)
