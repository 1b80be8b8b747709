// nanotorch/fwd.hpp — forward declarations of the main types, for headers that only name them.
//
// Including this is cheap: it pulls in no standard headers beyond <cstdint>. In particular
// tensor.hpp uses it to name autograd::Node without including autograd.
#pragma once

#include <cstdint>

namespace nanotorch {

class Tensor;
struct TensorImpl;
class Generator;
struct PackedConvWeight;

namespace autograd {
class Node;
}  // namespace autograd

namespace nn {
class Module;
}  // namespace nn

}  // namespace nanotorch
