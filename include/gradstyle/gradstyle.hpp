#pragma once
// Umbrella header: every public gradstyle header — the tensor core, autograd, every op family,
// the nn modules, the networks (models) and the file readers/writers (io). Including a single
// header of an area is cheaper to compile; this one is for programs that use the whole library.
// Public headers include only the standard library and each other (no src/, CUDA, Eigen, stb).

// core
#include "gradstyle/core/device.hpp"
#include "gradstyle/core/dtype.hpp"
#include "gradstyle/core/error.hpp"
#include "gradstyle/core/half.hpp"
#include "gradstyle/core/host_device.hpp"
#include "gradstyle/core/np_random.hpp"
#include "gradstyle/core/rng.hpp"
#include "gradstyle/core/settings.hpp"
#include "gradstyle/core/shape.hpp"
#include "gradstyle/core/storage.hpp"
#include "gradstyle/core/tensor.hpp"
#include "gradstyle/core/version.hpp"

// autograd
#include "gradstyle/autograd/autograd.hpp"

// ops
#include "gradstyle/ops/bias_act.hpp"
#include "gradstyle/ops/conv.hpp"
#include "gradstyle/ops/dropout.hpp"
#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/grid_sample.hpp"
#include "gradstyle/ops/interpolate.hpp"
#include "gradstyle/ops/linalg.hpp"
#include "gradstyle/ops/loss.hpp"
#include "gradstyle/ops/minibatch_std.hpp"
#include "gradstyle/ops/modulated_conv.hpp"
#include "gradstyle/ops/norm.hpp"
#include "gradstyle/ops/pad.hpp"
#include "gradstyle/ops/perspective_warp.hpp"
#include "gradstyle/ops/pool.hpp"
#include "gradstyle/ops/reduce.hpp"
#include "gradstyle/ops/selective_attention.hpp"
#include "gradstyle/ops/shape.hpp"
#include "gradstyle/ops/softmax.hpp"
#include "gradstyle/ops/upfirdn2d.hpp"

// nn
#include "gradstyle/nn/layers.hpp"
#include "gradstyle/nn/module.hpp"

// data
#include "gradstyle/data/align.hpp"
#include "gradstyle/data/toyfaces.hpp"

// models
#include "gradstyle/models/arcface.hpp"
#include "gradstyle/models/e4e.hpp"
#include "gradstyle/models/editing.hpp"
#include "gradstyle/models/encoder_layers.hpp"
#include "gradstyle/models/gam.hpp"
#include "gradstyle/models/gradstyle_config.hpp"
#include "gradstyle/models/gradstyle_net.hpp"
#include "gradstyle/models/grm.hpp"
#include "gradstyle/models/irse.hpp"
#include "gradstyle/models/lpips.hpp"
#include "gradstyle/models/stylegan2.hpp"

// train
#include "gradstyle/train/config.hpp"
#include "gradstyle/train/e4e_trainer.hpp"
#include "gradstyle/train/losses.hpp"
#include "gradstyle/train/optim.hpp"
#include "gradstyle/train/stylegan2_trainer.hpp"
#include "gradstyle/train/trainer.hpp"

// eval
#include "gradstyle/eval/ablation.hpp"
#include "gradstyle/eval/inversion.hpp"
#include "gradstyle/eval/metrics.hpp"
#include "gradstyle/eval/toyfaces_demo.hpp"

// io
#include "gradstyle/io/checkpoint.hpp"
#include "gradstyle/io/file.hpp"
#include "gradstyle/io/image.hpp"
#include "gradstyle/io/npy.hpp"
#include "gradstyle/io/pickle.hpp"
#include "gradstyle/io/py_value.hpp"
#include "gradstyle/io/raw_tensor.hpp"
#include "gradstyle/io/safetensors.hpp"
#include "gradstyle/io/sniff.hpp"
#include "gradstyle/io/tensor_bridge.hpp"
#include "gradstyle/io/torch_pt.hpp"
#include "gradstyle/io/zip.hpp"
