#!/usr/bin/python3
"""Exports ResNet-18, ResNet-50 and MobileNetV2 from torchvision with seeded random weights to
ONNX (opset 13, input "image" [batch,3,224,224], output "logits"), for the comparisons with
onnxruntime-node and the benchmarks. The files are large, so they are generated (by CI too),
not committed.

BatchNorm statistics are randomized (not the identity) so that folding them is really tested.

    /usr/bin/python3 tools/export_torchvision_models.py [--out build/models] [--only resnet18,...]
"""
import argparse
import os

import torch
import torchvision


def seeded(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 0.5 + 0.75)
                m.weight.copy_(torch.rand(m.num_features, generator=g) * 0.5 + 0.75)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model.eval()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "build", "models"))
    p.add_argument("--only", default="resnet18,resnet50,mobilenet_v2")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    for i, name in enumerate(args.only.split(",")):
        path = os.path.join(args.out, f"{name}.onnx")
        if os.path.exists(path):
            print(f"{path} exists")
            continue
        torch.manual_seed(1000 + i)
        model = seeded(getattr(torchvision.models, name)(weights=None), 2000 + i)
        x = torch.rand(1, 3, 224, 224)
        torch.onnx.export(model, x, path + ".tmp", opset_version=13, input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, do_constant_folding=True)
        os.replace(path + ".tmp", path)
        print(f"wrote {path} ({os.path.getsize(path) / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
