#include "gradstyle/core/settings.hpp"

#include <atomic>

namespace gradstyle {

namespace {
std::atomic<bool> g_tf32{false};
std::atomic<bool> g_deterministic{true};
}  // namespace

void set_allow_tf32(bool on) { g_tf32.store(on, std::memory_order_relaxed); }
bool allow_tf32() { return g_tf32.load(std::memory_order_relaxed); }

void set_deterministic_algorithms(bool on) { g_deterministic.store(on, std::memory_order_relaxed); }
bool deterministic_algorithms() { return g_deterministic.load(std::memory_order_relaxed); }

}  // namespace gradstyle
