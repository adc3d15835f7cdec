// Minimal fibers for the CUDA emulator: each emulated GPU thread of a block runs on its own stack
// and hands control back to the scheduler at a barrier. A hand-written stack switch on x86-64 and
// aarch64 (a few nanoseconds: only callee-saved registers move), ucontext elsewhere.
#pragma once

#include <cstddef>

namespace radedge_emulation {

class Fiber {
 public:
  using Entry = void (*)(void* argument);

  // A stack of `stack_bytes` with a guard page below it, so an overflow faults instead of
  // corrupting its neighbour.
  explicit Fiber(size_t stack_bytes);
  ~Fiber();
  Fiber(const Fiber&) = delete;
  Fiber& operator=(const Fiber&) = delete;

  // Prepares the fiber to run entry(argument) from the top of its stack on the next resume().
  void reset(Entry entry, void* argument);
  // Runs the fiber until it calls suspend() (or its entry finishes by calling finish()).
  void resume();
  // From inside the fiber: back to whoever called resume().
  void suspend();
  // From inside the fiber, for the last time: back to whoever called resume(), never to return
  // (until reset() starts it again).
  [[noreturn]] void exit();

 private:
  static void trampoline(void* self);
  static void trampoline_words(unsigned int high, unsigned int low);  // for makecontext

  void* stack_ = nullptr;
  size_t mapped_bytes_ = 0;
  size_t stack_bytes_ = 0;
  void* context_ = nullptr;         // the fiber's saved stack pointer (or ucontext)
  void* caller_context_ = nullptr;  // the scheduler's
  Entry entry_ = nullptr;
  void* argument_ = nullptr;
  // AddressSanitizer's view of the stacks (used only in a -fsanitize=address build).
  void* fake_stack_ = nullptr;
  const void* caller_stack_bottom_ = nullptr;
  size_t caller_stack_size_ = 0;
};

}  // namespace radedge_emulation
