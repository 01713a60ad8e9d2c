#pragma once
// Optimisers for the train layer: Adam, RAdam, Lookahead over any optimiser, and Ranger
// (RAdam + Lookahead + gradient centralisation, as e4e/HFGI train with it). docs/optim.md has the
// formulas and the state keys.
//
//   train::Adam opt(train::trainable_parameters(net, "grm."), {.lr = 1e-4});
//   loss.backward(); opt.step(); opt.zero_grad();
//   auto state = opt.state_dict();          // named tensors: "grm.w.exp_avg", "step", "lr", ...
//
// Every update is written with the engine's tensor ops under autograd::NoGradGuard, in place into
// the parameters' storage, so it runs on the CPU and on CUDA, for float32 and float64 parameters
// (the state has the parameter's dtype and device). A parameter whose .grad is undefined is
// skipped for that step, as torch.optim does.
//
// The optimiser holds Tensor handles. nn::Module::to() and nn::Module::load_state_dict() replace
// a module's tensors with new ones, so build the optimiser after the model is placed and loaded;
// handles taken before would keep updating the old tensors.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gradstyle/core/error.hpp"
#include "gradstyle/core/tensor.hpp"

namespace gradstyle::nn {
class Module;
}

namespace gradstyle::train {

using NamedParameters = std::vector<std::pair<std::string, Tensor>>;
using OptimizerState = std::map<std::string, Tensor>;

// A state that does not fit the optimiser (missing, unexpected, wrong shape/dtype, bad value).
class OptimizerStateError : public ValueError {
  using ValueError::ValueError;
};

// The parameters of m that require grad, as handles named "<prefix><dotted name>".
NamedParameters trainable_parameters(nn::Module& m, const std::string& prefix = "");

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient.
  virtual void step() = 0;
  // Drops the .grad of every parameter (the next backward starts from nothing).
  void zero_grad();
  virtual double lr() const = 0;
  virtual void set_lr(double lr) = 0;

  const NamedParameters& parameters() const { return params_; }
  const std::string& kind() const { return kind_; }  // "Adam", "Lookahead(Adam)", ...

  // The whole state as named tensors. Per-parameter tensors (moments, slow weights) are the live
  // state tensors themselves (clone them to keep a snapshot while stepping on); counters are 0-d
  // int64 and hyperparameters 0-d float64 tensors made fresh.
  OptimizerState state_dict() const;
  // Restores a state_dict() of an optimiser of the same kind over parameters of the same names
  // and shapes: it copies into the existing state tensors and restores counters and
  // hyperparameters (lr included, as torch does). Every key must match both ways, with the same
  // shape and dtype; otherwise OptimizerStateError lists every problem and nothing is changed.
  void load_state_dict(const OptimizerState& state);

  // One item of state, as a typed pointer into the optimiser.
  struct StateEntry {
    std::string key;
    Tensor* tensor = nullptr;  // loaded by copying into it
    double* real = nullptr;    // saved as a 0-d float64 tensor
    int64_t* count = nullptr;  // saved as a 0-d int64 tensor; must be a non-negative integer
  };

 protected:
  Optimizer(std::string kind, NamedParameters params);
  virtual std::vector<StateEntry> state_entries() = 0;
  // Throws ValueError naming the bad hyperparameter.
  virtual void check_hyperparameters() const = 0;
  // For wrappers, which expose their inner optimiser's state as their own.
  static std::vector<StateEntry> state_entries_of(Optimizer& o) { return o.state_entries(); }
  static void check_hyperparameters_of(const Optimizer& o) { o.check_hyperparameters(); }
  // The detached gradient of parameter i, checked to match it; undefined when it has none.
  Tensor grad_of(size_t i) const;
  // A zero tensor like parameter i (its shape, dtype and device).
  Tensor zeros_like_param(size_t i) const;

  std::string kind_;
  NamedParameters params_;
};

// torch.optim.Adam (amsgrad=False, maximize=False): with g = grad + weight_decay * p (L2, like
// torch; 0 = off), m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2, t = t + 1,
// p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
};

class Adam : public Optimizer {
 public:
  explicit Adam(NamedParameters params, AdamOptions options = {});
  void step() override;
  double lr() const override { return o_.lr; }
  void set_lr(double lr) override;
  const AdamOptions& options() const { return o_; }
  int64_t steps() const { return step_; }

 protected:
  std::vector<StateEntry> state_entries() override;
  void check_hyperparameters() const override;

 private:
  AdamOptions o_;
  std::vector<Tensor> exp_avg_, exp_avg_sq_;  // like each parameter
  std::vector<int64_t> param_step_;           // updates each parameter received
  int64_t step_ = 0;                          // step() calls
};

// RAdam as the inner optimiser of e4e's Ranger (Less Wright's Ranger 20.4.11), see
// src/train/radam.cpp for the exact rule and its quirks. The defaults are Ranger's.
struct RAdamOptions {
  double lr = 1e-3;
  double beta1 = 0.95;
  double beta2 = 0.999;
  double eps = 1e-5;
  double weight_decay = 0.0;      // decoupled: p -= lr * wd * p before the update
  double n_sma_threshold = 5.0;   // rectified (adaptive) step only when N_sma > this
  bool gradient_centralization = false;  // grad -= mean over all dims but the first (dim > 1)
};

class RAdam : public Optimizer {
 public:
  explicit RAdam(NamedParameters params, RAdamOptions options = {});
  void step() override;
  double lr() const override { return o_.lr; }
  void set_lr(double lr) override;
  RAdamOptions options() const;
  int64_t steps() const { return step_; }
  // Updates parameter i has received, and whether the last step() updated it.
  int64_t param_step(size_t i) const { return param_step_.at(i); }
  bool updated_last_step(size_t i) const { return updated_.at(i) != 0; }

 protected:
  std::vector<StateEntry> state_entries() override;
  void check_hyperparameters() const override;

 private:
  RAdamOptions o_;  // gradient_centralization lives in gc_
  int64_t gc_ = 0;  // 0 or 1, saved as a counter
  std::vector<Tensor> exp_avg_, exp_avg_sq_;
  std::vector<int64_t> param_step_;
  std::vector<uint8_t> updated_;
  int64_t step_ = 0;
};

// Lookahead (Zhang et al. 2019) over any inner optimiser: the slow weights start as a copy of
// the parameters at construction; after every k-th step of the inner ("fast") optimiser,
// slow <- slow + alpha (fast - slow) and fast <- slow.
struct LookaheadOptions {
  int64_t k = 6;
  double alpha = 0.5;
};

class Lookahead : public Optimizer {
 public:
  Lookahead(std::unique_ptr<Optimizer> inner, LookaheadOptions options = {});
  void step() override;
  double lr() const override { return inner_->lr(); }
  void set_lr(double lr) override { inner_->set_lr(lr); }
  Optimizer& inner() { return *inner_; }
  const LookaheadOptions& options() const { return o_; }
  int64_t steps() const { return counter_; }  // fast steps taken

 protected:
  // Ranger reuses the slow-weight machinery with its own sync rule.
  Lookahead(std::string kind, std::unique_ptr<Optimizer> inner, LookaheadOptions options);
  virtual bool sync_due(size_t i) const;  // default: after every k-th step()
  virtual void before_inner_step() {}
  std::vector<StateEntry> state_entries() override;
  void check_hyperparameters() const override;

  std::unique_ptr<Optimizer> inner_;
  LookaheadOptions o_;
  std::vector<Tensor> slow_;  // like each parameter
  int64_t counter_ = 0;
};

// Ranger as e4e/HFGI's training/ranger.py: RAdam (with gradient centralisation) whose per-
// parameter step count drives the Lookahead sync (when that parameter's step % k == 0), with the
// slow weights taken from the parameter at its first update.
struct RangerOptions {
  double lr = 1e-3;
  double alpha = 0.5;
  int64_t k = 6;
  double n_sma_threshold = 5.0;
  double beta1 = 0.95;
  double beta2 = 0.999;
  double eps = 1e-5;
  double weight_decay = 0.0;
  bool gradient_centralization = true;
};

class Ranger : public Lookahead {
 public:
  explicit Ranger(NamedParameters params, RangerOptions options = {});
  RAdam& radam() { return *radam_; }

 protected:
  bool sync_due(size_t i) const override;
  void before_inner_step() override;

 private:
  RAdam* radam_;  // owned by inner_
};

}  // namespace gradstyle::train
