;; The step's hand-written kernels (workers/training/wasm-kernels.ts says why), four float32
;; values at a time (WASM SIMD), on tfjs-backend-wasm's own memory, which this module imports:
;; every argument named like a tensor is the byte offset of its values in that memory. Each lane
;; rounds each product and sum to float32 in the order tfjs's kernels do, so the results are
;; tfjs's bits (test/helpers/assemble-wasm.ts also assembles a variant whose matMul fuses them).
;; An output may be its own input (each value is read before it is written).
;; wasm-kernels-binary.ts holds this module assembled (test/workers/training/fused-update.test.ts
;; assembles this file with wabt and checks that they are the same bytes); `npm run build:wasm`
;; writes it anew. The threaded build's memory is shared: that module is this one with the import
;; below declared `(memory 1 65536 shared)`.
(module
  (import "env" "memory" (memory 1))

  ;; The SGD and momentum updates of fused-update.ts, over n values of each of `rows` rows that lie
  ;; $ld values apart (rows 1 for a whole tensor; a block of a matrix's columns, which
  ;; product-helpers.ts hands threads, has more).

  ;; w = c·g + w0
  (func (export "sgd") (param $w0 i32) (param $g i32) (param $w i32) (param $n i32) (param $c f32) (param $rows i32) (param $ld i32)
    (local $r i32) (local $step i32) (local $i i32) (local $vectors i32) (local $bytes i32) (local $cv v128)
    (local.set $cv (f32x4.splat (local.get $c)))
    (local.set $bytes (i32.shl (local.get $n) (i32.const 2)))
    (local.set $vectors (i32.and (local.get $bytes) (i32.const -16)))
    (local.set $step (i32.shl (local.get $ld) (i32.const 2)))
    (loop $row
      (local.set $i (i32.const 0))
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
          (br $next)))
      (local.set $w0 (i32.add (local.get $w0) (local.get $step)))
      (local.set $g (i32.add (local.get $g) (local.get $step)))
      (local.set $w (i32.add (local.get $w) (local.get $step)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br_if $row (i32.lt_u (local.get $r) (local.get $rows)))))

  ;; v = m·v0 + g; w = c·v + w0
  (func (export "momentum")
    (param $w0 i32) (param $v0 i32) (param $g i32) (param $w i32) (param $v i32) (param $n i32) (param $m f32) (param $c f32) (param $rows i32) (param $ld i32)
    (local $r i32) (local $step i32) (local $i i32) (local $vectors i32) (local $bytes i32) (local $mv v128) (local $cv v128) (local $next v128) (local $s f32)
    (local.set $mv (f32x4.splat (local.get $m)))
    (local.set $cv (f32x4.splat (local.get $c)))
    (local.set $bytes (i32.shl (local.get $n) (i32.const 2)))
    (local.set $vectors (i32.and (local.get $bytes) (i32.const -16)))
    (local.set $step (i32.shl (local.get $ld) (i32.const 2)))
    (loop $row
      (local.set $i (i32.const 0))
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
          (br $loop)))
      (local.set $w0 (i32.add (local.get $w0) (local.get $step)))
      (local.set $v0 (i32.add (local.get $v0) (local.get $step)))
      (local.set $g (i32.add (local.get $g) (local.get $step)))
      (local.set $w (i32.add (local.get $w) (local.get $step)))
      (local.set $v (i32.add (local.get $v) (local.get $step)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br_if $row (i32.lt_u (local.get $r) (local.get $rows)))))

  ;; Nesterov: v = m·v0 + g; w = c·(g + v·m) + w0
  (func (export "nesterov")
    (param $w0 i32) (param $v0 i32) (param $g i32) (param $w i32) (param $v i32) (param $n i32) (param $m f32) (param $c f32) (param $rows i32) (param $ld i32)
    (local $r i32) (local $step i32) (local $i i32) (local $vectors i32) (local $bytes i32) (local $mv v128) (local $cv v128) (local $gv v128) (local $next v128)
    (local $gs f32) (local $s f32)
    (local.set $mv (f32x4.splat (local.get $m)))
    (local.set $cv (f32x4.splat (local.get $c)))
    (local.set $bytes (i32.shl (local.get $n) (i32.const 2)))
    (local.set $vectors (i32.and (local.get $bytes) (i32.const -16)))
    (local.set $step (i32.shl (local.get $ld) (i32.const 2)))
    (loop $row
      (local.set $i (i32.const 0))
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
          (br $loop)))
      (local.set $w0 (i32.add (local.get $w0) (local.get $step)))
      (local.set $v0 (i32.add (local.get $v0) (local.get $step)))
      (local.set $g (i32.add (local.get $g) (local.get $step)))
      (local.set $w (i32.add (local.get $w) (local.get $step)))
      (local.set $v (i32.add (local.get $v) (local.get $step)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br_if $row (i32.lt_u (local.get $r) (local.get $rows)))))

  ;; out[c] = the sum of x[r, c] over the rows r of x [rows, cols], row after row from 0: tfjs's Sum
  ;; over axis 0 (its kernel transposes, then adds each row of the transpose in order).
  (func (export "columnSums") (param $x i32) (param $out i32) (param $rows i32) (param $cols i32)
    (local $c i32) (local $at i32) (local $end i32) (local $stride i32) (local $vectors i32) (local $sum v128) (local $s f32)
    (local.set $stride (i32.shl (local.get $cols) (i32.const 2)))
    (local.set $end (i32.add (local.get $x) (i32.mul (local.get $rows) (local.get $stride))))
    (local.set $vectors (i32.and (local.get $cols) (i32.const -4)))
    (block $done
      (loop $column
        (br_if $done (i32.ge_u (local.get $c) (local.get $vectors)))
        (local.set $sum (v128.const f32x4 0 0 0 0))
        (local.set $at (i32.add (local.get $x) (i32.shl (local.get $c) (i32.const 2))))
        (block $summed
          (loop $row
            (br_if $summed (i32.ge_u (local.get $at) (local.get $end)))
            (local.set $sum (f32x4.add (local.get $sum) (v128.load (local.get $at))))
            (local.set $at (i32.add (local.get $at) (local.get $stride)))
            (br $row)))
        (v128.store (i32.add (local.get $out) (i32.shl (local.get $c) (i32.const 2))) (local.get $sum))
        (local.set $c (i32.add (local.get $c) (i32.const 4)))
        (br $column)))
    (block $done
      (loop $column
        (br_if $done (i32.ge_u (local.get $c) (local.get $cols)))
        (local.set $s (f32.const 0))
        (local.set $at (i32.add (local.get $x) (i32.shl (local.get $c) (i32.const 2))))
        (block $summed
          (loop $row
            (br_if $summed (i32.ge_u (local.get $at) (local.get $end)))
            (local.set $s (f32.add (local.get $s) (f32.load (local.get $at))))
            (local.set $at (i32.add (local.get $at) (local.get $stride)))
            (br $row)))
        (f32.store (i32.add (local.get $out) (i32.shl (local.get $c) (i32.const 2))) (local.get $s))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br $column))))

  ;; out [cols, rows] = x [rows, cols] transposed: tiles of 4 rows by 4 columns through SIMD
  ;; shuffles, then the rows and columns left over one value at a time. A copy: tfjs's bits.
  (func (export "transpose") (param $x i32) (param $out i32) (param $rows i32) (param $cols i32)
    (local $r i32) (local $c i32) (local $rows4 i32) (local $cols4 i32) (local $rowBytes i32) (local $colBytes i32)
    (local $in i32) (local $to i32) (local $a v128) (local $b v128) (local $d v128) (local $e v128)
    (local $ab0 v128) (local $ab1 v128) (local $de0 v128) (local $de1 v128)
    (local.set $rows4 (i32.and (local.get $rows) (i32.const -4)))
    (local.set $cols4 (i32.and (local.get $cols) (i32.const -4)))
    ;; a row of x, and a row of out
    (local.set $colBytes (i32.shl (local.get $cols) (i32.const 2)))
    (local.set $rowBytes (i32.shl (local.get $rows) (i32.const 2)))
    (block $rowsDone
      (loop $rowTiles
        (br_if $rowsDone (i32.ge_u (local.get $r) (local.get $rows4)))
        (local.set $c (i32.const 0))
        (block $colsDone
          (loop $colTiles
            (br_if $colsDone (i32.ge_u (local.get $c) (local.get $cols4)))
            (local.set $in (i32.add (local.get $x) (i32.shl (i32.add (i32.mul (local.get $r) (local.get $cols)) (local.get $c)) (i32.const 2))))
            (local.set $a (v128.load (local.get $in)))
            (local.set $b (v128.load (i32.add (local.get $in) (local.get $colBytes))))
            (local.set $d (v128.load (i32.add (local.get $in) (i32.shl (local.get $colBytes) (i32.const 1)))))
            (local.set $e (v128.load (i32.add (local.get $in) (i32.mul (local.get $colBytes) (i32.const 3)))))
            ;; a0 b0 a1 b1, a2 b2 a3 b3, and the same of the rows d and e
            (local.set $ab0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $a) (local.get $b)))
            (local.set $ab1 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $a) (local.get $b)))
            (local.set $de0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $d) (local.get $e)))
            (local.set $de1 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $d) (local.get $e)))
            (local.set $to (i32.add (local.get $out) (i32.shl (i32.add (i32.mul (local.get $c) (local.get $rows)) (local.get $r)) (i32.const 2))))
            (v128.store (local.get $to) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $ab0) (local.get $de0)))
            (v128.store (i32.add (local.get $to) (local.get $rowBytes))
              (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $ab0) (local.get $de0)))
            (v128.store (i32.add (local.get $to) (i32.shl (local.get $rowBytes) (i32.const 1)))
              (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $ab1) (local.get $de1)))
            (v128.store (i32.add (local.get $to) (i32.mul (local.get $rowBytes) (i32.const 3)))
              (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $ab1) (local.get $de1)))
            (local.set $c (i32.add (local.get $c) (i32.const 4)))
            (br $colTiles)))
        (local.set $r (i32.add (local.get $r) (i32.const 4)))
        (br $rowTiles)))
    ;; the columns right of the tiles, in every row; then the rows below the tiles, left of those columns
    (call $copyTransposed (local.get $x) (local.get $out) (local.get $rows) (local.get $cols) (i32.const 0) (local.get $rows) (local.get $cols4) (local.get $cols))
    (call $copyTransposed (local.get $x) (local.get $out) (local.get $rows) (local.get $cols) (local.get $rows4) (local.get $rows) (i32.const 0) (local.get $cols4)))

  ;; dx of max pooling x [batch, height, width, channels] (NHWC) over ph x pw windows that do not
  ;; overlap ("valid", strides equal to the window): each window's dy goes to its first maximum in
  ;; row-major order, a value above all before it, from -infinity (tfjs-backend-cpu's
  ;; maxPoolPositions: a window of -infinity or NaN alone gets none), +0 everywhere else, the rows
  ;; and columns no window covers included. Four channels at a time, those left over one at a time.
  ;; A copy of dy's values: tfjs's bits.
  (func (export "maxPoolGrad")
    (param $x i32) (param $dy i32) (param $dx i32) (param $batch i32) (param $height i32) (param $width i32) (param $channels i32)
    (param $ph i32) (param $pw i32)
    (local $outH i32) (local $outW i32) (local $pixel i32) (local $row i32) (local $vectors i32)
    (local $img i32) (local $oh i32) (local $ow i32) (local $win i32) (local $g i32) (local $c i32)
    (local $r i32) (local $q i32) (local $p i32) (local $rowAt i32) (local $at i32)
    (local $best v128) (local $pos v128) (local $v v128) (local $gt v128) (local $gv v128)
    (local $bs f32) (local $ps i32) (local $vs f32)
    (local.set $outH (i32.div_u (local.get $height) (local.get $ph)))
    (local.set $outW (i32.div_u (local.get $width) (local.get $pw)))
    ;; bytes: a pixel's channels, a row of pixels, the channels taken four at a time
    (local.set $pixel (i32.shl (local.get $channels) (i32.const 2)))
    (local.set $row (i32.mul (local.get $width) (local.get $pixel)))
    (local.set $vectors (i32.shl (i32.and (local.get $channels) (i32.const -4)) (i32.const 2)))
    ;; rows or columns no window covers: all of dx zeroed first
    (if (i32.or (i32.ne (i32.mul (local.get $outH) (local.get $ph)) (local.get $height))
                (i32.ne (i32.mul (local.get $outW) (local.get $pw)) (local.get $width)))
      (then (call $zero (local.get $dx) (i32.mul (i32.mul (local.get $batch) (local.get $height)) (local.get $row)))))
    (block $imagesDone
      (loop $image
        (br_if $imagesDone (i32.ge_u (local.get $img) (local.get $batch)))
        (local.set $oh (i32.const 0))
        (block $rowsDone
          (loop $windowRow
            (br_if $rowsDone (i32.ge_u (local.get $oh) (local.get $outH)))
            (local.set $ow (i32.const 0))
            (block $colsDone
              (loop $windowCol
                (br_if $colsDone (i32.ge_u (local.get $ow) (local.get $outW)))
                ;; the window's first pixel in x and dx, its pixel in dy
                (local.set $win (i32.add
                  (i32.mul (i32.add (i32.mul (local.get $img) (local.get $height)) (i32.mul (local.get $oh) (local.get $ph))) (local.get $row))
                  (i32.mul (i32.mul (local.get $ow) (local.get $pw)) (local.get $pixel))))
                (local.set $g (i32.add (local.get $dy) (i32.mul
                  (i32.add (i32.mul (i32.add (i32.mul (local.get $img) (local.get $outH)) (local.get $oh)) (local.get $outW)) (local.get $ow))
                  (local.get $pixel))))
                (local.set $c (i32.const 0))
                (block $vectorsDone
                  (loop $vector
                    (br_if $vectorsDone (i32.ge_u (local.get $c) (local.get $vectors)))
                    (local.set $best (f32x4.splat (f32.const -inf)))
                    (local.set $pos (i32x4.splat (i32.const -1)))
                    (local.set $p (i32.const 0))
                    (local.set $rowAt (i32.add (local.get $win) (local.get $c)))
                    (local.set $r (local.get $ph))
                    (loop $findRow
                      (local.set $at (local.get $rowAt))
                      (local.set $q (local.get $pw))
                      (loop $findCol
                        (local.set $v (v128.load (i32.add (local.get $x) (local.get $at))))
                        (local.set $gt (f32x4.gt (local.get $v) (local.get $best)))
                        (local.set $best (v128.bitselect (local.get $v) (local.get $best) (local.get $gt)))
                        (local.set $pos (v128.bitselect (i32x4.splat (local.get $p)) (local.get $pos) (local.get $gt)))
                        (local.set $p (i32.add (local.get $p) (i32.const 1)))
                        (local.set $at (i32.add (local.get $at) (local.get $pixel)))
                        (local.set $q (i32.sub (local.get $q) (i32.const 1)))
                        (br_if $findCol (local.get $q)))
                      (local.set $rowAt (i32.add (local.get $rowAt) (local.get $row)))
                      (local.set $r (i32.sub (local.get $r) (i32.const 1)))
                      (br_if $findRow (local.get $r)))
                    (local.set $gv (v128.load (i32.add (local.get $g) (local.get $c))))
                    (local.set $p (i32.const 0))
                    (local.set $rowAt (i32.add (local.get $win) (local.get $c)))
                    (local.set $r (local.get $ph))
                    (loop $spreadRow
                      (local.set $at (local.get $rowAt))
                      (local.set $q (local.get $pw))
                      (loop $spreadCol
                        (v128.store (i32.add (local.get $dx) (local.get $at))
                          (v128.and (local.get $gv) (i32x4.eq (local.get $pos) (i32x4.splat (local.get $p)))))
                        (local.set $p (i32.add (local.get $p) (i32.const 1)))
                        (local.set $at (i32.add (local.get $at) (local.get $pixel)))
                        (local.set $q (i32.sub (local.get $q) (i32.const 1)))
                        (br_if $spreadCol (local.get $q)))
                      (local.set $rowAt (i32.add (local.get $rowAt) (local.get $row)))
                      (local.set $r (i32.sub (local.get $r) (i32.const 1)))
                      (br_if $spreadRow (local.get $r)))
                    (local.set $c (i32.add (local.get $c) (i32.const 16)))
                    (br $vector)))
                (block $channelsDone
                  (loop $channel
                    (br_if $channelsDone (i32.ge_u (local.get $c) (local.get $pixel)))
                    (local.set $bs (f32.const -inf))
                    (local.set $ps (i32.const -1))
                    (local.set $p (i32.const 0))
                    (local.set $rowAt (i32.add (local.get $win) (local.get $c)))
                    (local.set $r (local.get $ph))
                    (loop $findRow
                      (local.set $at (local.get $rowAt))
                      (local.set $q (local.get $pw))
                      (loop $findCol
                        (local.set $vs (f32.load (i32.add (local.get $x) (local.get $at))))
                        (if (f32.gt (local.get $vs) (local.get $bs))
                          (then (local.set $bs (local.get $vs)) (local.set $ps (local.get $p))))
                        (local.set $p (i32.add (local.get $p) (i32.const 1)))
                        (local.set $at (i32.add (local.get $at) (local.get $pixel)))
                        (local.set $q (i32.sub (local.get $q) (i32.const 1)))
                        (br_if $findCol (local.get $q)))
                      (local.set $rowAt (i32.add (local.get $rowAt) (local.get $row)))
                      (local.set $r (i32.sub (local.get $r) (i32.const 1)))
                      (br_if $findRow (local.get $r)))
                    (local.set $p (i32.const 0))
                    (local.set $rowAt (i32.add (local.get $win) (local.get $c)))
                    (local.set $r (local.get $ph))
                    (loop $spreadRow
                      (local.set $at (local.get $rowAt))
                      (local.set $q (local.get $pw))
                      (loop $spreadCol
                        (f32.store (i32.add (local.get $dx) (local.get $at))
                          (select (f32.load (i32.add (local.get $g) (local.get $c))) (f32.const 0) (i32.eq (local.get $ps) (local.get $p))))
                        (local.set $p (i32.add (local.get $p) (i32.const 1)))
                        (local.set $at (i32.add (local.get $at) (local.get $pixel)))
                        (local.set $q (i32.sub (local.get $q) (i32.const 1)))
                        (br_if $spreadCol (local.get $q)))
                      (local.set $rowAt (i32.add (local.get $rowAt) (local.get $row)))
                      (local.set $r (i32.sub (local.get $r) (i32.const 1)))
                      (br_if $spreadRow (local.get $r)))
                    (local.set $c (i32.add (local.get $c) (i32.const 4)))
                    (br $channel)))
                (local.set $ow (i32.add (local.get $ow) (i32.const 1)))
                (br $windowCol)))
            (local.set $oh (i32.add (local.get $oh) (i32.const 1)))
            (br $windowRow)))
        (local.set $img (i32.add (local.get $img) (i32.const 1)))
        (br $image))))

  ;; dw [kh, kw, channels, outChannels] of a convolution (NHWC, dilation 1) of x [batch, height,
  ;; width, channels], from dy [batch, outH, outW, outChannels], outChannels a multiple of 16:
  ;; dw[p, q, i, o] = the sum over b, y, x of xpad[b, y·sh + p, x·sw + q, i] · dy[b, y, x, o], in
  ;; that order of (b, y, x), the padding's zeros skipped. One pass over dy per tap (p, q, i) and
  ;; 16 output channels, in four vectors of sums: for a first layer, whose patch is smaller than a
  ;; pixel of dy, this beats cutting the patches and packing one operand of their product.
  (func (export "convKernelGrad")
    (param $x i32) (param $dy i32) (param $dw i32) (param $batch i32) (param $height i32) (param $width i32) (param $channels i32)
    (param $outH i32) (param $outW i32) (param $outChannels i32) (param $kh i32) (param $kw i32)
    (param $sh i32) (param $sw i32) (param $padTop i32) (param $padLeft i32)
    (local $p i32) (local $q i32) (local $i i32) (local $k i32) (local $img i32) (local $y i32) (local $xo i32)
    (local $row i32) (local $col i32) (local $dyPixel i32) (local $at i32) (local $to i32)
    (local $v v128) (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128)
    ;; bytes of a pixel of dy
    (local.set $dyPixel (i32.shl (local.get $outChannels) (i32.const 2)))
    (local.set $to (local.get $dw))
    (loop $tapRow
      (local.set $q (i32.const 0))
      (loop $tapCol
        (local.set $i (i32.const 0))
        (loop $channel
          ;; $k: the byte offset of the 16 output channels in a pixel of dy
          (local.set $k (i32.const 0))
          (loop $chunk
            (local.set $s0 (v128.const i32x4 0 0 0 0))
            (local.set $s1 (v128.const i32x4 0 0 0 0))
            (local.set $s2 (v128.const i32x4 0 0 0 0))
            (local.set $s3 (v128.const i32x4 0 0 0 0))
            ;; $at: dy's pixel (b, y, x), this chunk
            (local.set $at (i32.add (local.get $dy) (local.get $k)))
            (local.set $img (i32.const 0))
            (loop $image
              (local.set $y (i32.const 0))
              (loop $outRow
                (local.set $row (i32.sub (i32.add (i32.mul (local.get $y) (local.get $sh)) (local.get $p)) (local.get $padTop)))
                (local.set $xo (i32.const 0))
                (loop $outCol
                  (local.set $col (i32.sub (i32.add (i32.mul (local.get $xo) (local.get $sw)) (local.get $q)) (local.get $padLeft)))
                  ;; unsigned: a negative row or column is out of range too
                  (if (i32.and (i32.lt_u (local.get $row) (local.get $height)) (i32.lt_u (local.get $col) (local.get $width)))
                    (then
                      (local.set $v (v128.load32_splat (i32.add (local.get $x) (i32.shl
                        (i32.add (i32.mul (i32.add (i32.mul (i32.add (i32.mul (local.get $img) (local.get $height)) (local.get $row)) (local.get $width)) (local.get $col)) (local.get $channels)) (local.get $i))
                        (i32.const 2)))))
                      (local.set $s0 (f32x4.add (local.get $s0) (f32x4.mul (local.get $v) (v128.load (local.get $at)))))
                      (local.set $s1 (f32x4.add (local.get $s1) (f32x4.mul (local.get $v) (v128.load offset=16 (local.get $at)))))
                      (local.set $s2 (f32x4.add (local.get $s2) (f32x4.mul (local.get $v) (v128.load offset=32 (local.get $at)))))
                      (local.set $s3 (f32x4.add (local.get $s3) (f32x4.mul (local.get $v) (v128.load offset=48 (local.get $at)))))))
                  (local.set $at (i32.add (local.get $at) (local.get $dyPixel)))
                  (local.set $xo (i32.add (local.get $xo) (i32.const 1)))
                  (br_if $outCol (i32.lt_u (local.get $xo) (local.get $outW))))
                (local.set $y (i32.add (local.get $y) (i32.const 1)))
                (br_if $outRow (i32.lt_u (local.get $y) (local.get $outH))))
              (local.set $img (i32.add (local.get $img) (i32.const 1)))
              (br_if $image (i32.lt_u (local.get $img) (local.get $batch))))
            (v128.store (local.get $to) (local.get $s0))
            (v128.store offset=16 (local.get $to) (local.get $s1))
            (v128.store offset=32 (local.get $to) (local.get $s2))
            (v128.store offset=48 (local.get $to) (local.get $s3))
            (local.set $to (i32.add (local.get $to) (i32.const 64)))
            (local.set $k (i32.add (local.get $k) (i32.const 64)))
            (br_if $chunk (i32.lt_u (local.get $k) (local.get $dyPixel))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $channel (i32.lt_u (local.get $i) (local.get $channels))))
        (local.set $q (i32.add (local.get $q) (i32.const 1)))
        (br_if $tapCol (i32.lt_u (local.get $q) (local.get $kw))))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br_if $tapRow (i32.lt_u (local.get $p) (local.get $kh)))))

  ;; c [m, n] = a·b of a [m, k] and b [k, n], plus `bias` (a row of n) when $bias is not 0 (no
  ;; tensor lies at offset 0), k at least 1. A row of b and of c is $ld values apart ($ld = n for
  ;; whole matrices; more for a block of their columns, which product-helpers.ts hands threads). a's value (i, kk) lies at a + 4·(i·rowStride +
  ;; kk·colStride): a as laid out (rowStride k, colStride 1) or the transpose of the matrix laid
  ;; out (colStride m, rowStride 1). Each output adds its k products in order from kk = 0, then the
  ;; bias: the bits of XNNPACK's product, which adds along k in order too, and of tfjs's Add after
  ;; it (the fused variant rounds each multiply-add once). With $accumulate the sums start from
  ;; what c holds instead of 0: a product over k in chunks, in order, the same bits as in one go
  ;; (the sums are float32 in c as in the registers). Blocks of 4 rows by 8 columns (8
  ;; vectors of sums, which x64's 16 SIMD registers hold beside b's two vectors and a's value),
  ;; row blocks outer so that their rows of a stay in cache across b's columns; the rows left over
  ;; one at a time, the columns left over (n mod 8) one value at a time. b is read as laid out:
  ;; XNNPACK packs b anew whenever its values are new, as a step's weights and batches are, which
  ;; took as long as the product itself.
  (func (export "matMul")
    (param $a i32) (param $b i32) (param $bias i32) (param $c i32) (param $m i32) (param $k i32) (param $n i32)
    (param $rowStride i32) (param $colStride i32) (param $accumulate i32) (param $ld i32)
    (local $i i32) (local $j i32) (local $kk i32) (local $m4 i32) (local $rowBytes i32) (local $nBytes i32) (local $blockBytes i32)
    (local $rs i32) (local $cs i32) (local $pa0 i32) (local $pa1 i32) (local $pa2 i32) (local $pa3 i32) (local $pb i32) (local $pc i32)
    (local $v v128) (local $b0 v128) (local $b1 v128) (local $bias0 v128) (local $bias1 v128)
    (local $s00 v128) (local $s01 v128) (local $s10 v128) (local $s11 v128)
    (local $s20 v128) (local $s21 v128) (local $s30 v128) (local $s31 v128) (local $s f32)
    ;; bytes from a row of b and c to the next; bytes of the n columns, and of those in blocks of 8
    (local.set $rowBytes (i32.shl (local.get $ld) (i32.const 2)))
    (local.set $nBytes (i32.shl (local.get $n) (i32.const 2)))
    (local.set $blockBytes (i32.shl (i32.and (local.get $n) (i32.const -8)) (i32.const 2)))
    (local.set $m4 (i32.and (local.get $m) (i32.const -4)))
    (local.set $rs (i32.shl (local.get $rowStride) (i32.const 2)))
    (local.set $cs (i32.shl (local.get $colStride) (i32.const 2)))
    ;; $i: the block's first row; $j: the byte offset of its first column in a row of b and c
    (block $rows4Done
      (loop $rows4
        (br_if $rows4Done (i32.ge_u (local.get $i) (local.get $m4)))
        (local.set $j (i32.const 0))
        (block $blocksDone
          (loop $block
            (br_if $blocksDone (i32.ge_u (local.get $j) (local.get $blockBytes)))
            ;; the sums so far: 0, or with $accumulate what c holds
            (local.set $pc (i32.add (local.get $c) (i32.add (i32.mul (local.get $i) (local.get $rowBytes)) (local.get $j))))
            (if (local.get $accumulate)
              (then
                (local.set $s00 (v128.load (local.get $pc)))
                (local.set $s01 (v128.load offset=16 (local.get $pc)))
                (local.set $s10 (v128.load (i32.add (local.get $pc) (local.get $rowBytes))))
                (local.set $s11 (v128.load offset=16 (i32.add (local.get $pc) (local.get $rowBytes))))
                (local.set $s20 (v128.load (i32.add (local.get $pc) (i32.shl (local.get $rowBytes) (i32.const 1)))))
                (local.set $s21 (v128.load offset=16 (i32.add (local.get $pc) (i32.shl (local.get $rowBytes) (i32.const 1)))))
                (local.set $s30 (v128.load (i32.add (local.get $pc) (i32.mul (local.get $rowBytes) (i32.const 3)))))
                (local.set $s31 (v128.load offset=16 (i32.add (local.get $pc) (i32.mul (local.get $rowBytes) (i32.const 3))))))
              (else
                (local.set $s00 (v128.const i32x4 0 0 0 0))
                (local.set $s01 (v128.const i32x4 0 0 0 0))
                (local.set $s10 (v128.const i32x4 0 0 0 0))
                (local.set $s11 (v128.const i32x4 0 0 0 0))
                (local.set $s20 (v128.const i32x4 0 0 0 0))
                (local.set $s21 (v128.const i32x4 0 0 0 0))
                (local.set $s30 (v128.const i32x4 0 0 0 0))
                (local.set $s31 (v128.const i32x4 0 0 0 0))))
            (local.set $pa0 (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $rs))))
            (local.set $pa1 (i32.add (local.get $pa0) (local.get $rs)))
            (local.set $pa2 (i32.add (local.get $pa1) (local.get $rs)))
            (local.set $pa3 (i32.add (local.get $pa2) (local.get $rs)))
            (local.set $pb (i32.add (local.get $b) (local.get $j)))
            (local.set $kk (local.get $k))
            (loop $sum
              (local.set $b0 (v128.load (local.get $pb)))
              (local.set $b1 (v128.load offset=16 (local.get $pb)))
              (local.set $v (v128.load32_splat (local.get $pa0)))
              (local.set $s00 (f32x4.add (local.get $s00) (f32x4.mul (local.get $v) (local.get $b0))))
              (local.set $s01 (f32x4.add (local.get $s01) (f32x4.mul (local.get $v) (local.get $b1))))
              (local.set $v (v128.load32_splat (local.get $pa1)))
              (local.set $s10 (f32x4.add (local.get $s10) (f32x4.mul (local.get $v) (local.get $b0))))
              (local.set $s11 (f32x4.add (local.get $s11) (f32x4.mul (local.get $v) (local.get $b1))))
              (local.set $v (v128.load32_splat (local.get $pa2)))
              (local.set $s20 (f32x4.add (local.get $s20) (f32x4.mul (local.get $v) (local.get $b0))))
              (local.set $s21 (f32x4.add (local.get $s21) (f32x4.mul (local.get $v) (local.get $b1))))
              (local.set $v (v128.load32_splat (local.get $pa3)))
              (local.set $s30 (f32x4.add (local.get $s30) (f32x4.mul (local.get $v) (local.get $b0))))
              (local.set $s31 (f32x4.add (local.get $s31) (f32x4.mul (local.get $v) (local.get $b1))))
              (local.set $pa0 (i32.add (local.get $pa0) (local.get $cs)))
              (local.set $pa1 (i32.add (local.get $pa1) (local.get $cs)))
              (local.set $pa2 (i32.add (local.get $pa2) (local.get $cs)))
              (local.set $pa3 (i32.add (local.get $pa3) (local.get $cs)))
              (local.set $pb (i32.add (local.get $pb) (local.get $rowBytes)))
              (local.set $kk (i32.sub (local.get $kk) (i32.const 1)))
              (br_if $sum (local.get $kk)))
            (if (local.get $bias)
              (then
                (local.set $bias0 (v128.load (i32.add (local.get $bias) (local.get $j))))
                (local.set $bias1 (v128.load offset=16 (i32.add (local.get $bias) (local.get $j))))
                (local.set $s00 (f32x4.add (local.get $s00) (local.get $bias0)))
                (local.set $s01 (f32x4.add (local.get $s01) (local.get $bias1)))
                (local.set $s10 (f32x4.add (local.get $s10) (local.get $bias0)))
                (local.set $s11 (f32x4.add (local.get $s11) (local.get $bias1)))
                (local.set $s20 (f32x4.add (local.get $s20) (local.get $bias0)))
                (local.set $s21 (f32x4.add (local.get $s21) (local.get $bias1)))
                (local.set $s30 (f32x4.add (local.get $s30) (local.get $bias0)))
                (local.set $s31 (f32x4.add (local.get $s31) (local.get $bias1)))))
            (local.set $pc (i32.add (local.get $c) (i32.add (i32.mul (local.get $i) (local.get $rowBytes)) (local.get $j))))
            (v128.store (local.get $pc) (local.get $s00))
            (v128.store offset=16 (local.get $pc) (local.get $s01))
            (local.set $pc (i32.add (local.get $pc) (local.get $rowBytes)))
            (v128.store (local.get $pc) (local.get $s10))
            (v128.store offset=16 (local.get $pc) (local.get $s11))
            (local.set $pc (i32.add (local.get $pc) (local.get $rowBytes)))
            (v128.store (local.get $pc) (local.get $s20))
            (v128.store offset=16 (local.get $pc) (local.get $s21))
            (local.set $pc (i32.add (local.get $pc) (local.get $rowBytes)))
            (v128.store (local.get $pc) (local.get $s30))
            (v128.store offset=16 (local.get $pc) (local.get $s31))
            (local.set $j (i32.add (local.get $j) (i32.const 32)))
            (br $block)))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $rows4)))
    ;; the rows left over, one at a time
    (block $rowsDone
      (loop $row
        (br_if $rowsDone (i32.ge_u (local.get $i) (local.get $m)))
        (local.set $j (i32.const 0))
        (block $blocksDone
          (loop $block
            (br_if $blocksDone (i32.ge_u (local.get $j) (local.get $blockBytes)))
            (local.set $pc (i32.add (local.get $c) (i32.add (i32.mul (local.get $i) (local.get $rowBytes)) (local.get $j))))
            (if (local.get $accumulate)
              (then
                (local.set $s00 (v128.load (local.get $pc)))
                (local.set $s01 (v128.load offset=16 (local.get $pc))))
              (else
                (local.set $s00 (v128.const i32x4 0 0 0 0))
                (local.set $s01 (v128.const i32x4 0 0 0 0))))
            (local.set $pa0 (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $rs))))
            (local.set $pb (i32.add (local.get $b) (local.get $j)))
            (local.set $kk (local.get $k))
            (loop $sum
              (local.set $v (v128.load32_splat (local.get $pa0)))
              (local.set $s00 (f32x4.add (local.get $s00) (f32x4.mul (local.get $v) (v128.load (local.get $pb)))))
              (local.set $s01 (f32x4.add (local.get $s01) (f32x4.mul (local.get $v) (v128.load offset=16 (local.get $pb)))))
              (local.set $pa0 (i32.add (local.get $pa0) (local.get $cs)))
              (local.set $pb (i32.add (local.get $pb) (local.get $rowBytes)))
              (local.set $kk (i32.sub (local.get $kk) (i32.const 1)))
              (br_if $sum (local.get $kk)))
            (if (local.get $bias)
              (then
                (local.set $bias0 (v128.load (i32.add (local.get $bias) (local.get $j))))
                (local.set $bias1 (v128.load offset=16 (i32.add (local.get $bias) (local.get $j))))
                (local.set $s00 (f32x4.add (local.get $s00) (local.get $bias0)))
                (local.set $s01 (f32x4.add (local.get $s01) (local.get $bias1)))))
            (local.set $pc (i32.add (local.get $c) (i32.add (i32.mul (local.get $i) (local.get $rowBytes)) (local.get $j))))
            (v128.store (local.get $pc) (local.get $s00))
            (v128.store offset=16 (local.get $pc) (local.get $s01))
            (local.set $j (i32.add (local.get $j) (i32.const 32)))
            (br $block)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $row)))
    ;; the columns left over, one value at a time
    (local.set $j (local.get $blockBytes))
    (block $colsDone
      (loop $col
        (br_if $colsDone (i32.ge_u (local.get $j) (local.get $nBytes)))
        (local.set $i (i32.const 0))
        (block $rowsDone
          (loop $row
            (br_if $rowsDone (i32.ge_u (local.get $i) (local.get $m)))
            (local.set $s (select (f32.load (i32.add (local.get $c) (i32.add (i32.mul (local.get $i) (local.get $rowBytes)) (local.get $j)))) (f32.const 0) (local.get $accumulate)))
            (local.set $pa0 (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $rs))))
            (local.set $pb (i32.add (local.get $b) (local.get $j)))
            (local.set $kk (local.get $k))
            (loop $sum
              (local.set $s (f32.add (local.get $s) (f32.mul (f32.load (local.get $pa0)) (f32.load (local.get $pb)))))
              (local.set $pa0 (i32.add (local.get $pa0) (local.get $cs)))
              (local.set $pb (i32.add (local.get $pb) (local.get $rowBytes)))
              (local.set $kk (i32.sub (local.get $kk) (i32.const 1)))
              (br_if $sum (local.get $kk)))
            (if (local.get $bias)
              (then (local.set $s (f32.add (local.get $s) (f32.load (i32.add (local.get $bias) (local.get $j)))))))
            (f32.store (i32.add (local.get $c) (i32.add (i32.mul (local.get $i) (local.get $rowBytes)) (local.get $j))) (local.get $s))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $row)))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $col))))

  ;; out [batch, outH, outW, channels] and `outBytes` from out on (the grid and any slack past it)
  ;; zeroed, then x [batch, height, width, channels] copied into each image at row `top`, column
  ;; `left`: a convolution's input padded, or dy laid on its input's padded grid (convolution
  ;; kernel gradients by taps, wasm-kernels.ts). A copy: the same bits.
  (func (export "embed")
    (param $x i32) (param $out i32) (param $batch i32) (param $height i32) (param $width i32) (param $channels i32)
    (param $outH i32) (param $outW i32) (param $top i32) (param $left i32) (param $outBytes i32)
    (local $img i32) (local $y i32) (local $pixel i32) (local $rowBytes i32) (local $from i32)
    (call $zero (local.get $out) (local.get $outBytes))
    ;; bytes of a pixel, of a row of x
    (local.set $pixel (i32.shl (local.get $channels) (i32.const 2)))
    (local.set $rowBytes (i32.mul (local.get $width) (local.get $pixel)))
    (local.set $from (local.get $x))
    (block $imagesDone
      (loop $image
        (br_if $imagesDone (i32.ge_u (local.get $img) (local.get $batch)))
        (local.set $y (i32.const 0))
        (block $rowsDone
          (loop $row
            (br_if $rowsDone (i32.ge_u (local.get $y) (local.get $height)))
            (memory.copy
              (i32.add (local.get $out) (i32.mul (local.get $pixel)
                (i32.add (i32.mul (i32.add (i32.mul (local.get $img) (local.get $outH)) (i32.add (local.get $y) (local.get $top))) (local.get $outW)) (local.get $left))))
              (local.get $from)
              (local.get $rowBytes))
            (local.set $from (i32.add (local.get $from) (local.get $rowBytes)))
            (local.set $y (i32.add (local.get $y) (i32.const 1)))
            (br $row)))
        (local.set $img (i32.add (local.get $img) (i32.const 1)))
        (br $image))))

  ;; out[k] = table[bytes[k]] for k < n: a batch of uint8 examples preprocessed through the float32
  ;; values of its 256 bytes (data.ts Batcher), four at a time. A copy of table values: the same bits.
  (func (export "byteTable") (param $bytes i32) (param $table i32) (param $out i32) (param $n i32)
    (local $i i32) (local $to i32) (local $fours i32)
    (local.set $fours (i32.and (local.get $n) (i32.const -4)))
    (local.set $to (local.get $out))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $fours)))
        (f32.store offset=0 (local.get $to) (f32.load (i32.add (local.get $table) (i32.shl (i32.load8_u offset=0 (i32.add (local.get $bytes) (local.get $i))) (i32.const 2)))))
        (f32.store offset=4 (local.get $to) (f32.load (i32.add (local.get $table) (i32.shl (i32.load8_u offset=1 (i32.add (local.get $bytes) (local.get $i))) (i32.const 2)))))
        (f32.store offset=8 (local.get $to) (f32.load (i32.add (local.get $table) (i32.shl (i32.load8_u offset=2 (i32.add (local.get $bytes) (local.get $i))) (i32.const 2)))))
        (f32.store offset=12 (local.get $to) (f32.load (i32.add (local.get $table) (i32.shl (i32.load8_u offset=3 (i32.add (local.get $bytes) (local.get $i))) (i32.const 2)))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (local.set $to (i32.add (local.get $to) (i32.const 16)))
        (br $next)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (f32.store (local.get $to) (f32.load (i32.add (local.get $table) (i32.shl (i32.load8_u (i32.add (local.get $bytes) (local.get $i))) (i32.const 2)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (local.set $to (i32.add (local.get $to) (i32.const 4)))
        (br $next))))

  ;; bytes [to, to + n) = 0, n a multiple of 4
  (func $zero (param $to i32) (param $n i32)
    (local $i i32) (local $vectors i32)
    (local.set $vectors (i32.and (local.get $n) (i32.const -16)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $vectors)))
        (v128.store (i32.add (local.get $to) (local.get $i)) (v128.const i32x4 0 0 0 0))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (f32.store (i32.add (local.get $to) (local.get $i)) (f32.const 0))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $next))))

  ;; out[c, r] = x[r, c] for rows [r0, r1) and columns [c0, c1), one value at a time
  (func $copyTransposed (param $x i32) (param $out i32) (param $rows i32) (param $cols i32) (param $r0 i32) (param $r1 i32) (param $c0 i32) (param $c1 i32)
    (local $r i32) (local $c i32)
    (local.set $r (local.get $r0))
    (block $rowsDone
      (loop $row
        (br_if $rowsDone (i32.ge_u (local.get $r) (local.get $r1)))
        (local.set $c (local.get $c0))
        (block $colsDone
          (loop $col
            (br_if $colsDone (i32.ge_u (local.get $c) (local.get $c1)))
            (i32.store
              (i32.add (local.get $out) (i32.shl (i32.add (i32.mul (local.get $c) (local.get $rows)) (local.get $r)) (i32.const 2)))
              (i32.load (i32.add (local.get $x) (i32.shl (i32.add (i32.mul (local.get $r) (local.get $cols)) (local.get $c)) (i32.const 2)))))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))
            (br $col)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $row)))))
