//! Plain scalar twins of every SIMD kernel: the definitions the fast kernels
//! are tested against, written as directly from the formulas as possible.
//! Also handy for reading: each is the chapter's formula as a loop.

/// `sum_i rows[i][c]` for every column `c` (the axis-0 sum).
pub fn column_sums<const C: usize>(rows: &[[f32; C]]) -> [f32; C] {
    let mut out = [0.0; C];
    for row in rows {
        for (o, v) in out.iter_mut().zip(row) {
            *o += v;
        }
    }
    out
}

/// `sum_c row[c]` (the axis-1 sum of one row).
pub fn row_sum<const C: usize>(row: &[f32; C]) -> f32 {
    row.iter().sum()
}

/// Stable softmax of each row: `exp(z - max z) / sum exp(z - max z)`.
pub fn softmax_rows<const C: usize>(rows: &mut [[f32; C]]) {
    for row in rows {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for v in row.iter_mut() {
            *v = libm::expf(*v - max);
            sum += *v;
        }
        for v in row.iter_mut() {
            *v /= sum;
        }
    }
}

/// The chapter's naive softmax of each row: `exp(z) / sum exp(z)`, nothing
/// subtracted.
pub fn naive_softmax_rows<const C: usize>(rows: &mut [[f32; C]]) {
    for row in rows {
        let mut sum = 0.0;
        for v in row.iter_mut() {
            *v = libm::expf(*v);
            sum += *v;
        }
        for v in row.iter_mut() {
            *v /= sum;
        }
    }
}

/// Summed loss `sum_i -log naive_softmax(z_i)[y_i]`; rows become
/// `naive_softmax(z_i) - onehot(y_i)`.
pub fn naive_softmax_cross_entropy_grad<const C: usize>(logits: &mut [[f32; C]], y: &[u8]) -> f32 {
    naive_softmax_rows(logits);
    let mut loss = 0.0;
    for (row, &label) in logits.iter_mut().zip(y) {
        loss -= libm::logf(row[usize::from(label)]);
        row[usize::from(label)] -= 1.0;
    }
    loss
}

/// `(1/n) sum_i -log y_hat[i][y_i]`.
pub fn cross_entropy<const C: usize>(y_hat: &[[f32; C]], y: &[u8]) -> f32 {
    let total: f32 = y_hat
        .iter()
        .zip(y)
        .map(|(row, &label)| -libm::logf(row[usize::from(label)]))
        .sum();
    total / y.len() as f32
}

/// Summed loss `sum_i logsumexp(z_i) - z_i[y_i]`; rows become
/// `softmax(z_i) - onehot(y_i)`.
pub fn softmax_cross_entropy_grad<const C: usize>(logits: &mut [[f32; C]], y: &[u8]) -> f32 {
    let mut loss = 0.0;
    for (row, &label) in logits.iter_mut().zip(y) {
        let label = usize::from(label);
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = row.iter().map(|&z| libm::expf(z - max)).sum();
        loss += max + libm::logf(sum) - row[label];
        for (j, v) in row.iter_mut().enumerate() {
            *v = libm::expf(*v - max) / sum - if j == label { 1.0 } else { 0.0 };
        }
    }
    loss
}

/// `logits[i][j] = b[j] + sum_k x[i][k] * w[j][k]` (weights class-major).
pub fn logits<const IN: usize, const OUT: usize>(
    x: &[[f32; IN]],
    w: &[[f32; IN]; OUT],
    b: &[f32; OUT],
    logits: &mut [[f32; OUT]],
) {
    for (x_row, out_row) in x.iter().zip(logits) {
        for j in 0..OUT {
            let mut dot = 0.0;
            for k in 0..IN {
                dot += x_row[k] * w[j][k];
            }
            out_row[j] = dot + b[j];
        }
    }
}

/// `w[j][k] += scale * sum_i g[i][j] * x[i][k]`.
pub fn accumulate_weight_gradient<const IN: usize, const OUT: usize>(
    x: &[[f32; IN]],
    g: &[[f32; OUT]],
    scale: f32,
    w: &mut [[f32; IN]; OUT],
) {
    accumulate(x, g, scale, w);
}

/// The weight-gradient loop for `f32` and `u8` inputs alike.
fn accumulate<T: Copy + Into<f32>, const IN: usize, const OUT: usize>(
    x: &[[T; IN]],
    g: &[[f32; OUT]],
    scale: f32,
    w: &mut [[f32; IN]; OUT],
) {
    for j in 0..OUT {
        for k in 0..IN {
            let mut dot = 0.0;
            for (x_row, g_row) in x.iter().zip(g) {
                dot += g_row[j] * x_row[k].into();
            }
            w[j][k] += scale * dot;
        }
    }
}

/// `logits[i][j] = b[j] + scale * sum_k x[i][k] * w[j][k]` for `u8` inputs.
pub fn logits_u8<const IN: usize, const OUT: usize>(
    x: &[[u8; IN]],
    w: &[[f32; IN]; OUT],
    b: &[f32; OUT],
    scale: f32,
    logits: &mut [[f32; OUT]],
) {
    for (x_row, out_row) in x.iter().zip(logits) {
        for j in 0..OUT {
            let mut dot = 0.0;
            for k in 0..IN {
                dot += f32::from(x_row[k]) * w[j][k];
            }
            out_row[j] = b[j] + scale * dot;
        }
    }
}

/// `w[j][k] += scale * sum_i g[i][j] * x[i][k]` for `u8` inputs.
pub fn accumulate_weight_gradient_u8<const IN: usize, const OUT: usize>(
    x: &[[u8; IN]],
    g: &[[f32; OUT]],
    scale: f32,
    w: &mut [[f32; IN]; OUT],
) {
    accumulate(x, g, scale, w);
}

/// One minibatch SGD step spelled out: logits, the summed loss and its
/// gradient `softmax - onehot`, `grad_W = X^T G`, `grad_b = colsum(G)`, then
/// `p <- p - lr * grad / n`. Returns the mean loss before the update. `g`
/// needs `x.len()` rows; `grad_w` is overwritten. The scalar twin of
/// [`crate::SoftmaxRegression::sgd_step`].
pub fn sgd_step<const IN: usize, const OUT: usize>(
    weights: &mut [[f32; IN]; OUT],
    bias: &mut [f32; OUT],
    x: &[[f32; IN]],
    y: &[u8],
    lr: f32,
    g: &mut [[f32; OUT]],
    grad_w: &mut [[f32; IN]; OUT],
) -> f32 {
    let n = x.len();
    let g = &mut g[..n];
    logits(x, weights, bias, g);
    let loss = softmax_cross_entropy_grad(g, y) / n as f32;
    for row in grad_w.iter_mut() {
        row.fill(0.0);
    }
    accumulate_weight_gradient(x, g, 1.0, grad_w);
    let grad_b = column_sums(g);
    for (w_row, g_row) in weights.iter_mut().zip(grad_w.iter()) {
        for (w, g) in w_row.iter_mut().zip(g_row) {
            *w -= lr * g / n as f32;
        }
    }
    for (b, g) in bias.iter_mut().zip(grad_b) {
        *b -= lr * g / n as f32;
    }
    loss
}
