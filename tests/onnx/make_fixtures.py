#!/usr/bin/env python3
"""Makes the ONNX reference fixtures for Sinter's importer tests.

Run through setup.sh (which makes the virtual environment). For every model it writes, under
fixtures/:

  NAME.onnx          the model
  NAME.inputs.npz    seeded random inputs, keyed by the model's input names
  NAME.outputs.npz   onnxruntime's outputs on them, keyed by the model's output names

Networks (nets_*) are small PyTorch versions of the classic architectures, exported with the
TorchScript exporter at opset 17 without constant folding (so batch norms stay BatchNormalization
nodes and shape computations stay in the graph, as many real exports have them). Per-op models
(op_*) are built with onnx.helper to pin attribute variants exactly.

`--large` also writes ResNet-50 and VGG-16 (torchvision-style, random weights, batch 1) to
large/, which is git-ignored: they are too big to commit.
"""

import argparse
import io
import os
import sys
import warnings

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

warnings.filterwarnings("ignore")
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures")


def save(name, model_bytes, inputs, out_dir=OUT):
    """Writes the model, runs onnxruntime on `inputs` and writes both .npz files."""
    os.makedirs(out_dir, exist_ok=True)
    model = onnx.load_from_string(model_bytes)
    onnx.checker.check_model(model)
    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    outs = sess.run(names, inputs)
    with open(os.path.join(out_dir, name + ".onnx"), "wb") as f:
        f.write(model_bytes)
    np.savez(os.path.join(out_dir, name + ".inputs.npz"), **inputs)
    np.savez(os.path.join(out_dir, name + ".outputs.npz"), **dict(zip(names, outs)))
    print(f"{name}: {len(model_bytes)} bytes, outputs {[o.shape for o in outs]}")


def rand(rng, *shape, positive=False):
    a = rng.standard_normal(shape).astype(np.float32)
    return np.abs(a) + 0.1 if positive else a


# ---------------------------------------------------------------------------------------------
# Networks, from PyTorch.


def torch_nets(rng):
    import torch
    from torch import nn

    torch.manual_seed(0)

    def randomize_bn(m):
        # Non-trivial running statistics, so batch norm is really tested.
        for mod in m.modules():
            if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
                with torch.no_grad():
                    mod.running_mean.uniform_(-0.5, 0.5)
                    mod.running_var.uniform_(0.5, 1.5)
                    mod.weight.uniform_(0.5, 1.5)
                    mod.bias.uniform_(-0.5, 0.5)
        return m

    def export(name, model, inputs, input_names, output_names):
        model = randomize_bn(model).eval()
        f = io.BytesIO()
        with torch.no_grad():
            torch.onnx.export(
                model,
                tuple(torch.from_numpy(a) for a in inputs),
                f,
                opset_version=17,
                dynamo=False,
                do_constant_folding=False,
                input_names=input_names,
                output_names=output_names,
            )
        save(name, f.getvalue(), dict(zip(input_names, inputs)))

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 10))

        def forward(self, x):
            return torch.log_softmax(self.net(x), dim=1)

    class LeNet5(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(1, 6, 5, padding=2)
            self.c3 = nn.Conv2d(6, 16, 5)
            self.f5 = nn.Linear(16 * 5 * 5, 120)
            self.f6 = nn.Linear(120, 84)
            self.out = nn.Linear(84, 10)

        def forward(self, x):
            x = torch.nn.functional.avg_pool2d(torch.tanh(self.c1(x)), 2)
            x = torch.nn.functional.max_pool2d(torch.relu(self.c3(x)), 2)
            x = x.view(x.size(0), -1)  # Shape -> Gather -> Concat -> Reshape
            x = torch.relu(self.f5(x))
            x = torch.relu(self.f6(x))
            return torch.softmax(self.out(x), dim=-1)

    class MiniVGG(nn.Module):
        def __init__(self):
            super().__init__()

            def block(i, o):
                return [nn.Conv2d(i, o, 3, padding=1), nn.ReLU(), nn.Conv2d(o, o, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]

            self.features = nn.Sequential(*block(3, 8), *block(8, 16))
            self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(16 * 4 * 4, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 10))

        def forward(self, x):
            return self.classifier(self.features(x))

    class BasicBlock(nn.Module):
        def __init__(self, i=8, o=16, stride=2):
            super().__init__()
            self.conv1 = nn.Conv2d(i, o, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(o)
            self.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(o)
            self.down = nn.Sequential(nn.Conv2d(i, o, 1, stride, bias=False), nn.BatchNorm2d(o))

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            return torch.relu(y + self.down(x))

    class Bottleneck(nn.Module):
        def __init__(self, c=16, mid=4):
            super().__init__()
            self.conv1 = nn.Conv2d(c, mid, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(mid)
            self.conv2 = nn.Conv2d(mid, mid, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(mid)
            self.conv3 = nn.Conv2d(mid, c, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(c)

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            y = torch.relu(self.bn2(self.conv2(y)))
            y = self.bn3(self.conv3(y))
            return torch.relu(y + x)

    class Inception(nn.Module):
        def __init__(self, c=8):
            super().__init__()
            self.b1 = nn.Conv2d(c, 4, 1)
            self.b3 = nn.Sequential(nn.Conv2d(c, 4, 1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1))
            self.b5 = nn.Sequential(nn.Conv2d(c, 2, 1), nn.ReLU(), nn.Conv2d(2, 3, 5, padding=2))
            self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(c, 3, 1))

        def forward(self, x):
            return torch.relu(torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], 1))

    class RNNNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.RNN(6, 8)
            self.head = nn.Linear(8, 3)

        def forward(self, x):
            y, h = self.rnn(x)
            return self.head(y[-1]), h

    class LSTMNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(6, 8, batch_first=True)
            self.head = nn.Linear(8, 3)

        def forward(self, x):
            y, (h, c) = self.lstm(x)
            return self.head(y[:, -1, :]), h, c

    class BiLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(5, 4, num_layers=2, bidirectional=True)

        def forward(self, x):
            y, _ = self.lstm(x)
            return y

    class AutoEncoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Sequential(nn.Conv2d(1, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU())
            self.dec = nn.Sequential(
                nn.ConvTranspose2d(16, 8, 3, 2, 1, output_padding=1), nn.ReLU(),
                nn.ConvTranspose2d(8, 1, 3, 2, 1, output_padding=1), nn.Sigmoid(),
            )

        def forward(self, x):
            return self.dec(self.enc(x))

    class Generator(nn.Module):
        def __init__(self, nz=16, ngf=8):
            super().__init__()
            self.net = nn.Sequential(
                nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
                nn.ConvTranspose2d(ngf, 3, 4, 2, 1, bias=False), nn.Tanh(),
            )

        def forward(self, z):
            return self.net(z)

    class Discriminator(nn.Module):
        def __init__(self, ndf=8):
            super().__init__()
            self.net = nn.Sequential(
                nn.Conv2d(3, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),
                nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, True),
                nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, True),
                nn.Conv2d(ndf * 4, 1, 4, 1, 0, bias=False), nn.Sigmoid(),
            )

        def forward(self, x):
            return self.net(x).view(-1, 1).squeeze(1)

    export("net_mlp", MLP(), [rand(rng, 4, 16)], ["x"], ["y"])
    export("net_lenet5", LeNet5(), [rand(rng, 2, 1, 28, 28)], ["x"], ["y"])
    export("net_mini_vgg", MiniVGG(), [rand(rng, 2, 3, 16, 16)], ["x"], ["y"])
    export("net_resnet_basic", BasicBlock(), [rand(rng, 2, 8, 8, 8)], ["x"], ["y"])
    export("net_resnet_bottleneck", Bottleneck(), [rand(rng, 2, 16, 8, 8)], ["x"], ["y"])
    export("net_inception", Inception(), [rand(rng, 1, 8, 12, 12)], ["x"], ["y"])
    export("net_rnn", RNNNet(), [rand(rng, 5, 2, 6)], ["x"], ["y", "h"])
    export("net_lstm", LSTMNet(), [rand(rng, 2, 5, 6)], ["x"], ["y", "h", "c"])
    export("net_bilstm", BiLSTM(), [rand(rng, 4, 2, 5)], ["x"], ["y"])
    export("net_autoencoder", AutoEncoder(), [rand(rng, 2, 1, 16, 16)], ["x"], ["y"])
    export("net_dcgan_generator", Generator(), [rand(rng, 2, 16, 1, 1)], ["z"], ["image"])
    export("net_dcgan_discriminator", Discriminator(), [rand(rng, 2, 3, 32, 32)], ["x"], ["p"])

    # A dynamic batch (`dim_param` "batch"), which the importer needs fixed by --shape. Own
    # seeds, so adding it changed none of the fixtures above.
    torch.manual_seed(1)
    x = rand(np.random.default_rng(1), 3, 1, 28, 28)
    f = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(LeNet5().eval(), (torch.from_numpy(x),), f, opset_version=17, dynamo=False,
                          do_constant_folding=False, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    save("dyn_lenet5", f.getvalue(), {"x": x})
    return export


def large_nets(rng):
    """ResNet-50 and VGG-16 at batch 1 with random weights (torchvision, if installed)."""
    import torch
    import torchvision

    out = os.path.join(HERE, "large")
    for name, ctor in [("resnet50", torchvision.models.resnet50), ("vgg16", torchvision.models.vgg16)]:
        model = ctor(weights=None).eval()
        x = rand(rng, 1, 3, 224, 224)
        f = io.BytesIO()
        with torch.no_grad():
            torch.onnx.export(model, (torch.from_numpy(x),), f, opset_version=17, dynamo=False,
                              input_names=["x"], output_names=["y"])
        save(name, f.getvalue(), {"x": x}, out)


# ---------------------------------------------------------------------------------------------
# Per-op models, from onnx.helper.


def op_model(name, rng, nodes, inputs, outputs, inits=(), opset=17, positive=()):
    """inputs: [(name, shape)] of f32 inputs (or (name, shape, dtype, array)); outputs: names."""
    vi_in, feeds = [], {}
    for spec in inputs:
        if len(spec) == 4:
            iname, shape, dtype, arr = spec
            feeds[iname] = arr
        else:
            iname, shape = spec
            dtype = TensorProto.FLOAT
            feeds[iname] = rand(rng, *shape, positive=iname in positive)
        vi_in.append(helper.make_tensor_value_info(iname, dtype, shape))
    vi_out = [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outputs]
    graph = helper.make_graph(nodes, name, vi_in, vi_out, initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="sinter-fixtures")
    model.ir_version = 8
    model = onnx.shape_inference.infer_shapes(model)
    # Declare the outputs with the types onnxruntime actually produces (ONNX shape inference
    # cannot always tell, and for ceil_mode pools it disagrees with onnxruntime).
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    results = sess.run(outputs, feeds)
    del model.graph.output[:]
    for o, r in zip(outputs, results):
        elem = helper.np_dtype_to_tensor_dtype(r.dtype)
        model.graph.output.append(helper.make_tensor_value_info(o, elem, list(r.shape)))
    save(name, model.SerializeToString(), feeds)


def init(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def ops(rng):
    N = helper.make_node
    w = lambda *s: rand(rng, *s) * 0.5

    # Convolutions: pads, strides, dilations, groups, auto_pad, 1-D.
    conv_cases = {
        "op_conv_pads_strides": dict(pads=[1, 2, 0, 1], strides=[2, 1]),
        "op_conv_dilation_groups": dict(dilations=[2, 1], group=2, pads=[2, 1, 2, 1]),
        "op_conv_same_upper": dict(auto_pad="SAME_UPPER", strides=[2, 2]),
        "op_conv_same_lower": dict(auto_pad="SAME_LOWER", strides=[2, 2]),
        "op_conv_valid": dict(auto_pad="VALID", strides=[1, 2]),
    }
    for name, attrs in conv_cases.items():
        g = attrs.get("group", 1)
        op_model(name, rng, [N("Conv", ["x", "w", "b"], ["y"], **attrs)], [("x", [2, 4, 9, 8])], ["y"],
                 [init("w", w(6, 4 // g, 3, 3)), init("b", w(6))])
    op_model("op_conv1d", rng, [N("Conv", ["x", "w"], ["y"], pads=[1, 1], strides=[2])], [("x", [2, 3, 10])], ["y"],
             [init("w", w(4, 3, 3))])

    # Transposed convolutions.
    convt_cases = {
        "op_convt_stride_pads_outpad": dict(strides=[2, 2], pads=[1, 0, 1, 0], output_padding=[1, 0]),
        "op_convt_output_shape": dict(strides=[2, 2], output_shape=[10, 9]),
        "op_convt_groups_dilation": dict(group=2, dilations=[2, 2]),
        "op_convt_same_upper": dict(strides=[2, 2], auto_pad="SAME_UPPER"),
    }
    for name, attrs in convt_cases.items():
        g = attrs.get("group", 1)
        op_model(name, rng, [N("ConvTranspose", ["x", "w", "b"], ["y"], **attrs)], [("x", [1, 4, 4, 4])], ["y"],
                 [init("w", w(4, 6 // g, 3, 3)), init("b", w(6))])

    # Pools: pads, strides, auto_pad, ceil_mode (with the window-start rule), count_include_pad.
    pool_cases = {
        "op_maxpool_pads": ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]), [1, 2, 7, 8]),
        "op_maxpool_ceil": ("MaxPool", dict(kernel_shape=[3, 2], strides=[2, 2], ceil_mode=1), [1, 2, 8, 7]),
        "op_maxpool_ceil_start_rule": ("MaxPool", dict(kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1), [1, 2, 3, 3]),
        "op_maxpool_same_upper": ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"), [1, 2, 8, 7]),
        "op_maxpool_same_lower": ("MaxPool", dict(kernel_shape=[2, 2], strides=[1, 1], auto_pad="SAME_LOWER"), [1, 2, 5, 5]),
        "op_avgpool_pads_exclude": ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]), [1, 2, 7, 8]),
        "op_avgpool_pads_include": ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1), [1, 2, 7, 8]),
        "op_avgpool_ceil_exclude": ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 1, 0], ceil_mode=1), [1, 2, 8, 8]),
        "op_avgpool_ceil_include": ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 1, 0], ceil_mode=1, count_include_pad=1), [1, 2, 8, 8]),
        "op_avgpool_same_upper": ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"), [1, 2, 8, 7]),
        "op_maxpool1d": ("MaxPool", dict(kernel_shape=[3], strides=[2], pads=[1, 1]), [2, 3, 9]),
    }
    for name, (op, attrs, shape) in pool_cases.items():
        op_model(name, rng, [N(op, ["x"], ["y"], **attrs)], [("x", shape)], ["y"])
    op_model("op_global_pools", rng, [N("GlobalAveragePool", ["x"], ["a"]), N("GlobalMaxPool", ["x"], ["m"])],
             [("x", [2, 3, 5, 4])], ["a", "m"])

    # Broadcasting arithmetic and the variadic ops.
    op_model("op_broadcast", rng, [
        N("Add", ["a", "b"], ["s"]), N("Mul", ["a", "c"], ["p"]), N("Sub", ["c", "a"], ["d"]),
        N("Div", ["a", "k"], ["q"]), N("Max", ["a", "b", "c"], ["mx"]), N("Min", ["c", "a"], ["mn"]),
        N("Sum", ["a", "b", "c"], ["sm"]), N("Pow", ["pos", "e"], ["pw"]),
    ], [("a", [2, 3, 4]), ("b", [4]), ("c", [3, 1]), ("pos", [2, 3])], ["s", "p", "d", "q", "mx", "mn", "sm", "pw"],
        [init("k", np.array(2.5, np.float32)), init("e", np.array([2], np.int64))], positive=("pos",))
    op_model("op_unary", rng, [
        N("Sqrt", ["p"], ["sq"]), N("Log", ["p"], ["lg"]), N("Exp", ["x"], ["ex"]), N("Neg", ["x"], ["ng"]),
        N("Abs", ["x"], ["ab"]), N("Sigmoid", ["x"], ["sg"]), N("Tanh", ["x"], ["th"]), N("Relu", ["x"], ["rl"]),
        N("LeakyRelu", ["x"], ["lr"], alpha=0.1), N("PRelu", ["x4", "slope"], ["pr"]),
        N("Clip", ["x", "lo", "hi"], ["cl"]), N("Clip", ["x", "", "hi"], ["cl2"]),
    ], [("x", [3, 4]), ("p", [3, 4]), ("x4", [2, 3, 2, 2])],
        ["sq", "lg", "ex", "ng", "ab", "sg", "th", "rl", "lr", "pr", "cl", "cl2"],
        [init("slope", w(3, 1, 1)), init("lo", np.array(-0.5, np.float32)), init("hi", np.array(0.7, np.float32))],
        positive=("p",))
    op_model("op_softmax", rng, [N("Softmax", ["x"], ["s"], axis=1), N("LogSoftmax", ["x"], ["l"]), N("Softmax", ["x"], ["d"])],
             [("x", [2, 3, 4])], ["s", "l", "d"])
    op_model("op_gemm", rng, [
        N("Gemm", ["a", "b", "c"], ["y"], transA=1, transB=1, alpha=0.5, beta=2.0),
        N("MatMul", ["m", "v"], ["mv"]), N("MatMul", ["v2", "m2"], ["vm"]), N("MatMul", ["bm", "m2"], ["bmm"]),
    ], [("a", [3, 2]), ("b", [4, 3]), ("m", [2, 3, 5]), ("v", [5]), ("v2", [5]), ("m2", [5, 4]), ("bm", [2, 3, 5])],
        ["y", "mv", "vm", "bmm"], [init("c", w(4))])
    op_model("op_batchnorm", rng, [N("BatchNormalization", ["x", "g", "b", "m", "v"], ["y"], epsilon=1e-3)],
             [("x", [2, 3, 4, 5])], ["y"],
             [init("g", w(3)), init("b", w(3)), init("m", w(3)), init("v", rand(rng, 3, positive=True))])

    # Movement, with shape inputs known at import time.
    i64 = lambda *v: np.array(v, np.int64)
    op_model("op_movement", rng, [
        N("Reshape", ["x", "shp"], ["r"]), N("Flatten", ["x"], ["f"], axis=2), N("Transpose", ["x"], ["t"], perm=[2, 0, 1]),
        N("Unsqueeze", ["x", "ua"], ["u"]), N("Squeeze", ["u", "ua"], ["sq"]),
        N("Concat", ["x", "x"], ["c"], axis=-1), N("Split", ["x", "sp"], ["s0", "s1"], axis=2),
        N("Slice", ["x", "st", "en", "ax", "stp"], ["sl"]), N("Slice", ["x", "st2", "en2"], ["sl2"]),
        N("Pad", ["x", "pads", "pv"], ["pd"]), N("Expand", ["c1", "es"], ["ex"]),
        N("Gather", ["x", "gi"], ["g"], axis=1), N("Identity", ["x"], ["id"]), N("Dropout", ["x"], ["dr"]),
    ], [("x", [2, 3, 4]), ("c1", [3, 1])],
        ["r", "f", "t", "u", "sq", "c", "s0", "s1", "sl", "sl2", "pd", "ex", "g", "id", "dr"],
        [init("shp", i64(0, -1, 2)), init("ua", i64(0, 3)), init("sp", i64(1, 3)),
         init("st", i64(-1, 0)), init("en", i64(-100, 3)), init("ax", i64(2, 1)), init("stp", i64(-2, 2)),
         init("st2", i64(1)), init("en2", i64(9223372036854775807)),
         init("pads", i64(0, 1, -1, 1, 0, 2)), init("pv", np.array(1.5, np.float32)),
         init("es", i64(2, 3, 4)), init("gi", i64(2, 0, -1, 2))])
    op_model("op_split18", rng, [N("Split", ["x"], ["a", "b", "c"], axis=1, num_outputs=3)],
             [("x", [2, 7])], ["a", "b", "c"], opset=18)
    op_model("op_shape_chain", rng, [
        N("Shape", ["x"], ["s"]), N("Gather", ["s", "zero"], ["n"], axis=0), N("Unsqueeze", ["n", "zero1"], ["n1"]),
        N("Concat", ["n1", "minus1"], ["shape"], axis=0), N("Reshape", ["x", "shape"], ["y"]),
        N("ConstantOfShape", ["s"], ["ones"], value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])),
        N("Add", ["x", "ones"], ["y2"]), N("Constant", [], ["k"], value_floats=[0.5, 2.0, 3.0, 4.0, 5.0]),
        N("Reshape", ["k", "kshape"], ["k2"]), N("Mul", ["y2", "k2"], ["y3"]), N("Cast", ["s"], ["sf"], to=TensorProto.FLOAT),
        N("Shape", ["x"], ["tail"], start=-2), N("Cast", ["tail"], ["tailf"], to=TensorProto.FLOAT),
    ], [("x", [2, 3, 5])], ["y", "y2", "y3", "sf", "tailf"],
        [init("zero", np.array(0, np.int64)), init("zero1", i64(0)), init("minus1", i64(-1)), init("kshape", i64(1, 5))])
    op_model("op_gather_indices_input", rng, [N("Gather", ["table", "idx"], ["e"], axis=0)],
             [("idx", [2, 3], TensorProto.INT64, np.array([[0, 4, 2], [-1, 1, 1]], np.int64))], ["e"],
             [init("table", w(5, 3))])
    op_model("op_reduce13", rng, [
        N("ReduceMean", ["x"], ["m"], axes=[1, -1]), N("ReduceMax", ["x"], ["x1"], axes=[0], keepdims=0),
        N("ReduceSum", ["x", "ax"], ["s"], keepdims=0), N("ReduceMean", ["x"], ["all"], keepdims=0),
    ], [("x", [2, 3, 4])], ["m", "x1", "s", "all"], [init("ax", i64(1))], opset=13)
    op_model("op_reduce18", rng, [
        N("ReduceMean", ["x", "ax"], ["m"]), N("ReduceMax", ["x", "ax"], ["x1"], keepdims=0),
        N("ReduceSum", ["x"], ["s"], keepdims=0), N("ReduceSum", ["x", "none"], ["id"], noop_with_empty_axes=1),
    ], [("x", [2, 3, 4])], ["m", "x1", "s", "id"], [init("ax", i64(0, 2)), init("none", np.zeros([0], np.int64))], opset=18)

    # Recurrent layers straight from ONNX: every direction, biases, initial states, layouts.
    S, B, I, H = 4, 2, 3, 5
    op_model("op_lstm_bidirectional", rng, [N("LSTM", ["x", "W", "R", "B", "", "h0", "c0"], ["y", "yh", "yc"],
                                               hidden_size=H, direction="bidirectional")],
             [("x", [S, B, I]), ("h0", [2, B, H]), ("c0", [2, B, H])], ["y", "yh", "yc"],
             [init("W", w(2, 4 * H, I)), init("R", w(2, 4 * H, H)), init("B", w(2, 8 * H))])
    # (layout=1 is lowered too, but onnxruntime refuses it, so there is no reference.)
    op_model("op_lstm_seq_lens", rng, [N("LSTM", ["x", "W", "R", "", "lens"], ["y", "yh"], hidden_size=H)],
             [("x", [S, B, I])], ["y", "yh"],
             [init("W", w(1, 4 * H, I)), init("R", w(1, 4 * H, H)), init("lens", np.full([B], S, np.int32))])
    op_model("op_rnn_reverse", rng, [N("RNN", ["x", "W", "R", "B"], ["y", "yh"], hidden_size=H, direction="reverse")],
             [("x", [S, B, I])], ["y", "yh"], [init("W", w(1, H, I)), init("R", w(1, H, H)), init("B", w(1, 2 * H))])
    op_model("op_rnn_relu_bidirectional", rng, [N("RNN", ["x", "W", "R"], ["y"], hidden_size=H, direction="bidirectional",
                                                   activations=["Relu", "Tanh"])],
             [("x", [S, B, I])], ["y"], [init("W", w(2, H, I)), init("R", w(2, H, H))])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--large", action="store_true", help="also write ResNet-50 and VGG-16 to large/")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    torch_nets(rng)
    ops(rng)
    if args.large:
        large_nets(rng)


if __name__ == "__main__":
    sys.exit(main())
