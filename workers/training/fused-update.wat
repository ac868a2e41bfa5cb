;; The SGD and momentum updates of fused-update.ts, four float32 values at a time (WASM SIMD),
;; on tfjs-backend-wasm's own memory, which this module imports: every argument named like a
;; tensor is the byte offset of its values in that memory, n the count of values. Each lane
;; rounds each product and sum to float32, as tfjs's Multiply and Add kernels round theirs, so
;; the results are tfjs's bits. The outputs may be the inputs (each value is read before it is
;; written). fused-update-wasm.ts holds these functions assembled (test/workers/training/
;; fused-update.test.ts assembles this file with wabt and checks that they are the same bytes);
;; `npm run build:wasm` writes it anew. The threaded build's memory is shared: that module is
;; this one with the import below declared `(memory 1 65536 shared)`.
(module
  (import "env" "memory" (memory 1))

  ;; w = c·g + w0
  (func (export "sgd") (param $w0 i32) (param $g i32) (param $w i32) (param $n i32) (param $c f32)
    (local $i i32) (local $vectors i32) (local $bytes i32) (local $cv v128)
    (local.set $cv (f32x4.splat (local.get $c)))
    (local.set $bytes (i32.shl (local.get $n) (i32.const 2)))
    (local.set $vectors (i32.and (local.get $bytes) (i32.const -16)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $vectors)))
        (v128.store
          (i32.add (local.get $w) (local.get $i))
          (f32x4.add
            (f32x4.mul (local.get $cv) (v128.load (i32.add (local.get $g) (local.get $i))))
            (v128.load (i32.add (local.get $w0) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $bytes)))
        (f32.store
          (i32.add (local.get $w) (local.get $i))
          (f32.add
            (f32.mul (local.get $c) (f32.load (i32.add (local.get $g) (local.get $i))))
            (f32.load (i32.add (local.get $w0) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $next))))

  ;; v = m·v0 + g; w = c·v + w0
  (func (export "momentum")
    (param $w0 i32) (param $v0 i32) (param $g i32) (param $w i32) (param $v i32) (param $n i32) (param $m f32) (param $c f32)
    (local $i i32) (local $vectors i32) (local $bytes i32) (local $mv v128) (local $cv v128) (local $next v128) (local $s f32)
    (local.set $mv (f32x4.splat (local.get $m)))
    (local.set $cv (f32x4.splat (local.get $c)))
    (local.set $bytes (i32.shl (local.get $n) (i32.const 2)))
    (local.set $vectors (i32.and (local.get $bytes) (i32.const -16)))
    (block $done
      (loop $loop
        (br_if $done (i32.ge_u (local.get $i) (local.get $vectors)))
        (local.set $next
          (f32x4.add
            (f32x4.mul (local.get $mv) (v128.load (i32.add (local.get $v0) (local.get $i))))
            (v128.load (i32.add (local.get $g) (local.get $i)))))
        (v128.store
          (i32.add (local.get $w) (local.get $i))
          (f32x4.add (f32x4.mul (local.get $cv) (local.get $next)) (v128.load (i32.add (local.get $w0) (local.get $i)))))
        (v128.store (i32.add (local.get $v) (local.get $i)) (local.get $next))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $loop)))
    (block $done
      (loop $loop
        (br_if $done (i32.ge_u (local.get $i) (local.get $bytes)))
        (local.set $s
          (f32.add
            (f32.mul (local.get $m) (f32.load (i32.add (local.get $v0) (local.get $i))))
            (f32.load (i32.add (local.get $g) (local.get $i)))))
        (f32.store
          (i32.add (local.get $w) (local.get $i))
          (f32.add (f32.mul (local.get $c) (local.get $s)) (f32.load (i32.add (local.get $w0) (local.get $i)))))
        (f32.store (i32.add (local.get $v) (local.get $i)) (local.get $s))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $loop))))

  ;; Nesterov: v = m·v0 + g; w = c·(g + v·m) + w0
  (func (export "nesterov")
    (param $w0 i32) (param $v0 i32) (param $g i32) (param $w i32) (param $v i32) (param $n i32) (param $m f32) (param $c f32)
    (local $i i32) (local $vectors i32) (local $bytes i32) (local $mv v128) (local $cv v128) (local $gv v128) (local $next v128)
    (local $gs f32) (local $s f32)
    (local.set $mv (f32x4.splat (local.get $m)))
    (local.set $cv (f32x4.splat (local.get $c)))
    (local.set $bytes (i32.shl (local.get $n) (i32.const 2)))
    (local.set $vectors (i32.and (local.get $bytes) (i32.const -16)))
    (block $done
      (loop $loop
        (br_if $done (i32.ge_u (local.get $i) (local.get $vectors)))
        (local.set $gv (v128.load (i32.add (local.get $g) (local.get $i))))
        (local.set $next (f32x4.add (f32x4.mul (local.get $mv) (v128.load (i32.add (local.get $v0) (local.get $i)))) (local.get $gv)))
        (v128.store
          (i32.add (local.get $w) (local.get $i))
          (f32x4.add
            (f32x4.mul (local.get $cv) (f32x4.add (local.get $gv) (f32x4.mul (local.get $next) (local.get $mv))))
            (v128.load (i32.add (local.get $w0) (local.get $i)))))
        (v128.store (i32.add (local.get $v) (local.get $i)) (local.get $next))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $loop)))
    (block $done
      (loop $loop
        (br_if $done (i32.ge_u (local.get $i) (local.get $bytes)))
        (local.set $gs (f32.load (i32.add (local.get $g) (local.get $i))))
        (local.set $s (f32.add (f32.mul (local.get $m) (f32.load (i32.add (local.get $v0) (local.get $i)))) (local.get $gs)))
        (f32.store
          (i32.add (local.get $w) (local.get $i))
          (f32.add
            (f32.mul (local.get $c) (f32.add (local.get $gs) (f32.mul (local.get $s) (local.get $m))))
            (f32.load (i32.add (local.get $w0) (local.get $i)))))
        (f32.store (i32.add (local.get $v) (local.get $i)) (local.get $s))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $loop)))))
