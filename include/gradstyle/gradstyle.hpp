#pragma once
// Umbrella header: the tensor core, autograd and every op family.
#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/core/tensor.hpp"
#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/linalg.hpp"
#include "gradstyle/ops/loss.hpp"
#include "gradstyle/ops/reduce.hpp"
#include "gradstyle/ops/shape.hpp"
#include "gradstyle/ops/softmax.hpp"
