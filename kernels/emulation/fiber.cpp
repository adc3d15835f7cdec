#include "fiber.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <new>
#include <stdexcept>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define RADEDGE_EMULATION_ASAN 1
#endif

#if defined(__x86_64__)
#define RADEDGE_EMULATION_ASM_SWITCH 1
#else
#include <ucontext.h>
#endif

#if defined(RADEDGE_EMULATION_ASM_SWITCH)
// radedge_emulation_switch(save, load): pushes the callee-saved registers on the current stack,
// stores the stack pointer in *save, loads `load` as the stack pointer and pops the registers that
// were saved there. radedge_emulation_start is where a new stack's first switch returns to: it
// calls rbx(r12) (see Fiber::reset for that frame).
extern "C" void radedge_emulation_switch(void** save, void* load);
asm(R"(
  .text
  .globl radedge_emulation_switch
  .hidden radedge_emulation_switch
  .type radedge_emulation_switch, @function
radedge_emulation_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size radedge_emulation_switch, .-radedge_emulation_switch

  .globl radedge_emulation_start
  .hidden radedge_emulation_start
  .type radedge_emulation_start, @function
radedge_emulation_start:
  movq %r12, %rdi
  callq *%rbx
  ud2
  .size radedge_emulation_start, .-radedge_emulation_start
)");
extern "C" void radedge_emulation_start();
#endif

namespace radedge_emulation {

Fiber::Fiber(size_t stack_bytes) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  stack_bytes_ = (stack_bytes + page - 1) / page * page;
  mapped_bytes_ = stack_bytes_ + page;
  void* mapped = mmap(nullptr, mapped_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapped == MAP_FAILED) throw std::bad_alloc();
  if (mprotect(mapped, page, PROT_NONE) != 0) {
    munmap(mapped, mapped_bytes_);
    throw std::runtime_error("CUDA emulation: cannot protect a fiber's guard page");
  }
  stack_ = mapped;
#if !defined(RADEDGE_EMULATION_ASM_SWITCH)
  context_ = new ucontext_t;
  caller_context_ = new ucontext_t;
#endif
}

Fiber::~Fiber() {
  if (stack_) munmap(stack_, mapped_bytes_);
#if !defined(RADEDGE_EMULATION_ASM_SWITCH)
  delete static_cast<ucontext_t*>(context_);
  delete static_cast<ucontext_t*>(caller_context_);
#endif
}

namespace {

// AddressSanitizer must be told about every stack switch, or it reports false errors.
void before_switch(void** fake_stack_save, const void* bottom, size_t size) {
#if defined(RADEDGE_EMULATION_ASAN)
  __sanitizer_start_switch_fiber(fake_stack_save, bottom, size);
#else
  (void)fake_stack_save;
  (void)bottom;
  (void)size;
#endif
}

void after_switch(void* fake_stack_save, const void** bottom_old, size_t* size_old) {
#if defined(RADEDGE_EMULATION_ASAN)
  __sanitizer_finish_switch_fiber(fake_stack_save, bottom_old, size_old);
#else
  (void)fake_stack_save;
  (void)bottom_old;
  (void)size_old;
#endif
}

}  // namespace

void Fiber::trampoline(void* self) {
  auto* fiber = static_cast<Fiber*>(self);
  after_switch(nullptr, &fiber->caller_stack_bottom_, &fiber->caller_stack_size_);
  fiber->entry_(fiber->argument_);
  // The entry never returns into the trampoline: the scheduler does not resume a finished
  // thread. If it ever did, stopping here beats running off the top of the stack.
  std::abort();
}

#if defined(RADEDGE_EMULATION_ASM_SWITCH)

void Fiber::reset(Entry entry, void* argument) {
  entry_ = entry;
  argument_ = argument;
  // The frame radedge_emulation_switch pops: r15 r14 r13 r12 rbx rbp, then the return address.
  // After that `ret` the stack pointer must be 16-byte aligned so that the call in
  // radedge_emulation_start enters the trampoline with the alignment the ABI promises.
  auto top = reinterpret_cast<uintptr_t>(stack_) + mapped_bytes_;
  top &= ~uintptr_t{15};
  auto* frame = reinterpret_cast<uintptr_t*>(top - 24 - 6 * sizeof(uintptr_t));
  frame[0] = 0;                                                  // r15
  frame[1] = 0;                                                  // r14
  frame[2] = 0;                                                  // r13
  frame[3] = reinterpret_cast<uintptr_t>(this);                  // r12: the trampoline's argument
  frame[4] = reinterpret_cast<uintptr_t>(&Fiber::trampoline);    // rbx: the function to call
  frame[5] = 0;                                                  // rbp
  frame[6] = reinterpret_cast<uintptr_t>(&radedge_emulation_start);  // return address
  context_ = frame;
}

void Fiber::resume() {
  void* fake_stack = nullptr;
  before_switch(&fake_stack, static_cast<char*>(stack_) + (mapped_bytes_ - stack_bytes_), stack_bytes_);
  radedge_emulation_switch(&caller_context_, context_);
  after_switch(fake_stack, nullptr, nullptr);
}

void Fiber::suspend() {
  before_switch(&fake_stack_, caller_stack_bottom_, caller_stack_size_);
  radedge_emulation_switch(&context_, caller_context_);
  after_switch(fake_stack_, &caller_stack_bottom_, &caller_stack_size_);
}

void Fiber::exit() {
  before_switch(nullptr, caller_stack_bottom_, caller_stack_size_);  // null: this stack is done
  radedge_emulation_switch(&context_, caller_context_);
  std::abort();
}

#else

void Fiber::trampoline_words(unsigned int high, unsigned int low) {
  trampoline(reinterpret_cast<void*>((static_cast<uintptr_t>(high) << 32) | static_cast<uintptr_t>(low)));
}

void Fiber::reset(Entry entry, void* argument) {
  entry_ = entry;
  argument_ = argument;
  auto* context = static_cast<ucontext_t*>(context_);
  getcontext(context);
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  context->uc_stack.ss_sp = static_cast<char*>(stack_) + page;
  context->uc_stack.ss_size = stack_bytes_;
  context->uc_link = nullptr;
  const auto self = reinterpret_cast<uintptr_t>(this);
  makecontext(context, reinterpret_cast<void (*)()>(&Fiber::trampoline_words), 2,
              static_cast<unsigned int>(self >> 32), static_cast<unsigned int>(self & 0xffffffffu));
}

void Fiber::resume() {
  void* fake_stack = nullptr;
  before_switch(&fake_stack, static_cast<char*>(stack_) + (mapped_bytes_ - stack_bytes_), stack_bytes_);
  swapcontext(static_cast<ucontext_t*>(caller_context_), static_cast<ucontext_t*>(context_));
  after_switch(fake_stack, nullptr, nullptr);
}

void Fiber::suspend() {
  before_switch(&fake_stack_, caller_stack_bottom_, caller_stack_size_);
  swapcontext(static_cast<ucontext_t*>(context_), static_cast<ucontext_t*>(caller_context_));
  after_switch(fake_stack_, &caller_stack_bottom_, &caller_stack_size_);
}

void Fiber::exit() {
  before_switch(nullptr, caller_stack_bottom_, caller_stack_size_);
  swapcontext(static_cast<ucontext_t*>(context_), static_cast<ucontext_t*>(caller_context_));
  std::abort();
}

#endif

}  // namespace radedge_emulation
