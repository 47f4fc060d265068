#!/usr/bin/python3
"""PyTorch reference for cmcr's ULIP-2 PointBERT tower (src/encoders/pointbert.c, pointgroup.c).

  pointbert_reference.py --out DIR [--dim 64 --depth 2 --encoder-dims 32 --width 3|6
                         --clouds 5 --points 10000 --seed 0] [--full]
  pointbert_reference.py --seeds DIR     the fuzz target's seed (fuzz/make_seeds.sh)
  pointbert_reference.py --weights ULIP.pt --embed FILE.npy... --save OUT.npy [--start S]
                         [--knn rule|ulip] [--batch 8] [--bf16] [--time]
      the L2-normalised embeddings of .npy clouds (N x w float32) as C-MCR computes them
      (encode_pc, then F.normalize), FPS from point S (default 0); --knn ulip groups with ULIP's
      own float32 formula, the official code path (the benchmark's reference); --bf16 under
      torch.autocast; --time prints "(R items/s)" over reading, grouping and the network.

Written from ULIP's PointTransformer (models/pointbert/point_encoder.py, dvae.py's Group and
Encoder) and C-MCR's CPU misc.fps; own code. --full is ULIP-2's size: D 384, depth 12, E 256.

Grouping: fps(xyz, 512) as C-MCR's loop but started at a given index (the reference draws it
with torch.randint); kNN by cmcr's documented rule (squared distance in float64 from the
float32 coordinates, stable sort: ties to the lower index), with ULIP's own float32 formula
(-2 a.b + |a|^2 + |b|^2, topk) run beside it to count how many groups agree as sets.

DIR gets ulip.pt (saved like a ULIP checkpoint: {'state_dict': {'module.' + key}, 'args', ...},
with small stand-ins for the image and text towers' keys), clouds/NAME.npy (float32 n x w),
names.txt (one NAME a line, in order), starts.npy (int64), ref_fps.npy (int32 K x 512),
ref_knn.npy (int32 K x 512 x 32), ref_emb.npy (float32 K x out, unnormalised, float32 model)
and ref_emb64.npy (the first cloud through the same model in float64). It prints the kNN
agreement per cloud (and how far the embedding moves with ULIP's groups) and timings.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_common import save_safetensors_header  # noqa: E402

GROUPS, GROUP_SIZE = 512, 32


# ------------------------------------------------------------------ grouping

def fps(xyz, m, start):
    """C-MCR's misc.fps on one cloud (N x 3 float32), from index start: m indices (int64)."""
    n = xyz.shape[0]
    cent = torch.zeros(m, dtype=torch.long)
    dist = torch.ones(n) * 1e10
    far = torch.tensor(start)
    for i in range(m):
        cent[i] = far
        d = torch.sum((xyz - xyz[far].view(1, 3)) ** 2, -1)
        dist = torch.min(dist, d)
        far = torch.max(dist, -1)[1]
    return cent


def knn_rule(xyz, centres, k):
    """cmcr's rule: the k smallest float64 squared distances, ties to the lower index, ordered."""
    p = xyz.double()
    c = p[centres]
    diff = c[:, None, :] - p[None, :, :]
    d = (diff[..., 0] * diff[..., 0] + diff[..., 1] * diff[..., 1]) + diff[..., 2] * diff[..., 2]
    return torch.sort(d, dim=-1, stable=True)[1][:, :k]


def knn_ulip(xyz, centres, k):
    """ULIP's knn_point: float32 -2 a.b + |a|^2 + |b|^2, then topk (unsorted)."""
    src, dst = xyz[centres][None], xyz[None]
    d = -2 * torch.matmul(src, dst.permute(0, 2, 1))
    d += torch.sum(src ** 2, -1).view(1, -1, 1)
    d += torch.sum(dst ** 2, -1).view(1, 1, -1)
    return torch.topk(d, k, dim=-1, largest=False, sorted=False)[1][0]


def group(cloud, start):
    """(neighbourhood (512, 32, w), centre (512, 3), fps idx, knn idx) of one cloud (N x w)."""
    xyz = cloud[:, :3].contiguous()
    cent = fps(xyz, GROUPS, start)
    idx = knn_rule(xyz, cent, GROUP_SIZE)
    centre = xyz[cent]
    nb = xyz[idx] - centre[:, None, :]
    if cloud.shape[1] > 3:
        nb = torch.cat((nb, cloud[:, 3:][idx]), dim=-1)
    return nb, centre, cent, idx


# ------------------------------------------------------------------ the model

class Encoder(nn.Module):
    """dvae.py's mini-PointNet."""

    def __init__(self, e, w):
        super().__init__()
        self.first_conv = nn.Sequential(nn.Conv1d(w, 128, 1), nn.BatchNorm1d(128), nn.ReLU(), nn.Conv1d(128, 256, 1))
        self.second_conv = nn.Sequential(nn.Conv1d(512, 512, 1), nn.BatchNorm1d(512), nn.ReLU(), nn.Conv1d(512, e, 1))
        self.e = e

    def forward(self, pg):
        b, g, n, c = pg.shape
        f = self.first_conv(pg.reshape(b * g, n, c).transpose(2, 1))
        glob = torch.max(f, dim=2, keepdim=True)[0]
        f = self.second_conv(torch.cat([glob.expand(-1, -1, n), f], dim=1))
        return torch.max(f, dim=2)[0].reshape(b, g, self.e)


class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads, self.scale = heads, (d // heads) ** -0.5
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        a = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((a @ v).transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(d, h), nn.GELU(), nn.Linear(h, d)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(d), Attention(d, heads)
        self.norm2, self.mlp = nn.LayerNorm(d), Mlp(d, 4 * d)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Blocks(nn.Module):
    def __init__(self, d, depth, heads):
        super().__init__()
        self.blocks = nn.ModuleList([Block(d, heads) for _ in range(depth)])

    def forward(self, x, pos):
        for blk in self.blocks:
            x = blk(x + pos)
        return x


class PointTransformer(nn.Module):
    """point_encoder.py's PointTransformer after grouping: forward(neighbourhood, centre)."""

    def __init__(self, d, depth, e, w):
        super().__init__()
        self.encoder = Encoder(e, w)
        self.reduce_dim = nn.Linear(e, d)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.cls_pos = nn.Parameter(torch.randn(1, 1, d))
        self.pos_embed = nn.Sequential(nn.Linear(3, 128), nn.GELU(), nn.Linear(128, d))
        self.blocks = Blocks(d, depth, d // 64)
        self.norm = nn.LayerNorm(d)

    def forward(self, nb, centre):
        tok = self.reduce_dim(self.encoder(nb))
        b = tok.shape[0]
        x = torch.cat((self.cls_token.expand(b, -1, -1), tok), dim=1)
        pos = torch.cat((self.cls_pos.expand(b, -1, -1), self.pos_embed(centre)), dim=1)
        x = self.norm(self.blocks(x, pos))
        return torch.cat([x[:, 0], x[:, 1:].max(1)[0]], dim=-1)


class ULIPPoints(nn.Module):
    """The point half of ULIP: encode_pc = point_encoder(pc) @ pc_projection."""

    def __init__(self, d, depth, e, w, out=512):
        super().__init__()
        self.point_encoder = PointTransformer(d, depth, e, w)
        self.pc_projection = nn.Parameter(torch.empty(2 * d, out))

    def forward(self, nb, centre):
        return self.point_encoder(nb, centre) @ self.pc_projection


def random_model(d, depth, e, w, seed):
    torch.manual_seed(seed)
    m = ULIPPoints(d, depth, e, w)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif "norm" in name or name.endswith("cls_token"):
                p.copy_(0.1 * torch.randn_like(p))
        nn.init.normal_(m.pc_projection, std=(2 * d) ** -0.5)
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm1d):
                mod.weight.copy_(1 + 0.1 * torch.randn_like(mod.weight))
                mod.bias.copy_(0.1 * torch.randn_like(mod.bias))
                mod.running_mean.copy_(0.1 * torch.randn_like(mod.running_mean))
                mod.running_var.copy_(0.5 + torch.rand_like(mod.running_var))
                mod.num_batches_tracked.fill_(1000)
    return m.eval()


def stand_ins():
    """Small tensors under the other ULIP keys, which a point loader must skip."""
    g = torch.Generator().manual_seed(1)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    return {"visual.cls_token": r(1, 1, 8), "visual.blocks.0.attn.qkv.weight": r(24, 8),
            "transformer.resblocks.0.attn.in_proj_weight": r(24, 8), "token_embedding.weight": r(10, 8),
            "positional_embedding": r(77, 8), "ln_final.weight": r(8), "ln_final.bias": r(8),
            "image_projection": r(8, 512), "text_projection": r(8, 512), "logit_scale": torch.tensor(2.659)}


def save_ulip(m, path):
    sd = {"module." + k: v for k, v in m.state_dict().items()}
    sd.update({"module." + k: v for k, v in stand_ins().items()})
    args = argparse.Namespace(model="ULIP_PointBERT", npoints=8192, evaluate_3d=True, use_height=False)
    torch.save({"state_dict": sd, "args": args, "epoch": 10, "best_acc1": 0.5}, path)
    # the loader's view: strict load of the point keys back into a fresh module
    back = torch.load(path)["state_dict"]
    fresh = ULIPPoints(*m_shape(m))
    fresh.load_state_dict({k[7:]: v for k, v in back.items() if k[7:] in fresh.state_dict()}, strict=True)
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), m.state_dict().values()))


def m_shape(m):
    pe = m.point_encoder
    return (pe.reduce_dim.out_features, len(pe.blocks.blocks), pe.reduce_dim.in_features,
            pe.encoder.first_conv[0].in_channels)


# ------------------------------------------------------------------ clouds

def make_cloud(rng, n, w, kind):
    """A cloud of n points: 'shape' (points near a torus and a box), or 'grid' (coordinates on a
    0.25 grid, so that many distances tie)."""
    if kind == "grid":
        xyz = rng.integers(-4, 5, size=(n, 3)).astype(np.float32) * 0.25
    else:
        t = rng.uniform(0, 2 * np.pi, size=(n, 2))
        torus = np.stack([(1 + 0.3 * np.cos(t[:, 1])) * np.cos(t[:, 0]), (1 + 0.3 * np.cos(t[:, 1])) * np.sin(t[:, 0]),
                          0.3 * np.sin(t[:, 1])], 1)
        box = rng.uniform(-0.5, 0.5, size=(n, 3)) * [0.4, 0.4, 1.6] + [0, 0, 0.8]
        xyz = np.where(rng.uniform(size=(n, 1)) < 0.7, torus, box) + 0.01 * rng.normal(size=(n, 3))
    cloud = xyz.astype(np.float32)
    if w == 6:
        cloud = np.concatenate([cloud, rng.uniform(0, 1, size=(n, 3)).astype(np.float32)], 1)
    return cloud


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--seeds")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--encoder-dims", type=int, default=32)
    ap.add_argument("--width", type=int, default=3, choices=(3, 6))
    ap.add_argument("--clouds", type=int, default=5)
    ap.add_argument("--points", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--weights")
    ap.add_argument("--embed", nargs="+")
    ap.add_argument("--save")
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--knn", choices=("rule", "ulip"), default="rule")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--time", action="store_true")
    a = ap.parse_args()
    if a.embed:
        if not a.weights or not a.save:
            ap.error("--embed needs --weights and --save")
        embed_files(a)
        return
    if a.full:
        a.dim, a.depth, a.encoder_dims = 384, 12, 256
    if a.seeds:
        seeds(a.seeds)
        return
    if not a.out:
        ap.error("--out is required")
    torch.set_num_threads(a.threads)
    m = random_model(a.dim, a.depth, a.encoder_dims, a.width, a.seed)
    os.makedirs(os.path.join(a.out, "clouds"))
    save_ulip(m, os.path.join(a.out, "ulip.pt"))
    rng = np.random.default_rng(a.seed)
    sizes = [a.points, 600, 100, 33, 2048]
    kinds = ["shape", "shape", "grid", "shape", "grid"]
    names, starts, fpss, knns, embs, embs64 = [], [], [], [], [], []
    agree = total = 0
    t_group = t_net = 0.0
    m64 = random_model(a.dim, a.depth, a.encoder_dims, a.width, a.seed).double()
    for i in range(a.clouds):
        n = sizes[i % len(sizes)]
        cloud = make_cloud(rng, n, a.width, kinds[i % len(kinds)])
        name = "c%d_%d" % (i, n)
        np.save(os.path.join(a.out, "clouds", name + ".npy"), cloud)
        start = 0 if i % 2 == 0 else int(rng.integers(0, n))
        t0 = time.perf_counter()
        nb, centre, cent, idx = group(torch.from_numpy(cloud), start)
        t1 = time.perf_counter()
        with torch.no_grad():
            emb = m(nb[None], centre[None])[0]
            t2 = time.perf_counter()
            if i == 0:  # float32 noise, measured on the first cloud only (float64 is slow)
                embs64.append(m64(nb[None].double(), centre[None].double())[0].numpy())
        t_group += t1 - t0
        t_net += t2 - t1
        ul = knn_ulip(torch.from_numpy(cloud[:, :3]).contiguous(), cent, GROUP_SIZE)
        same = sum(set(x.tolist()) == set(y.tolist()) for x, y in zip(ul, idx))
        moved = 0.0
        if same < GROUPS:  # the embedding with ULIP's own groups instead
            xyz = torch.from_numpy(cloud[:, :3])
            nb_u = xyz[ul] - centre[:, None, :]
            if a.width > 3:
                nb_u = torch.cat((nb_u, torch.from_numpy(cloud[:, 3:])[ul]), dim=-1)
            with torch.no_grad():
                moved = float((m(nb_u[None], centre[None])[0] - emb).abs().max())
        print("kNN %s (%s): ULIP's float32 formula + topk gives cmcr's group (as a set) in %d of %d groups; "
              "embedding with ULIP's groups: max |diff| %.3g" % (name, kinds[i % len(kinds)], same, GROUPS, moved))
        agree += same
        total += GROUPS
        names.append(name)
        starts.append(start)
        fpss.append(cent.numpy().astype(np.int32))
        knns.append(idx.numpy().astype(np.int32))
        embs.append(emb.numpy())
    if a.full:
        bench(m, a.out, names[0], starts[0], a.threads)
    with open(os.path.join(a.out, "names.txt"), "w") as fh:
        fh.write("".join(x + "\n" for x in names))
    np.save(os.path.join(a.out, "starts.npy"), np.array(starts, dtype=np.int64))
    np.save(os.path.join(a.out, "ref_fps.npy"), np.stack(fpss))
    np.save(os.path.join(a.out, "ref_knn.npy"), np.stack(knns))
    np.save(os.path.join(a.out, "ref_emb.npy"), np.stack(embs).astype(np.float32))
    np.save(os.path.join(a.out, "ref_emb64.npy"), np.stack(embs64).astype(np.float32))
    d64 = float(np.abs(embs[0].astype(np.float64) - embs64[0]).max())
    print("kNN: ULIP's float32 formula + topk picks the same group (as a set) as cmcr's rule in %d of %d groups"
          % (agree, total))
    print("float32 model vs float64 (first cloud): max |diff| = %.3g" % d64)
    print("reference (torch, %d threads): grouping %.1f ms/cloud, network %.1f ms/cloud (clouds of %s points)"
          % (a.threads, 1000 * t_group / a.clouds, 1000 * t_net / a.clouds, sizes[:a.clouds]))


def bench(m, out, name, start, threads, batch=4, runs=3):
    """Times of the first cloud: FPS, kNN (the rule; ULIP's formula), the network on a batch of copies."""
    cloud = torch.from_numpy(np.load(os.path.join(out, "clouds", name + ".npy")))
    xyz = cloud[:, :3].contiguous()
    t = {}
    for _ in range(runs):
        t0 = time.perf_counter()
        cent = fps(xyz, GROUPS, start)
        t1 = time.perf_counter()
        knn_rule(xyz, cent, GROUP_SIZE)
        t2 = time.perf_counter()
        knn_ulip(xyz, cent, GROUP_SIZE)
        t_ulip = time.perf_counter() - t2
        nb, centre, _, _ = group(cloud, start)
        with torch.no_grad():
            t3 = time.perf_counter()
            m(nb[None].expand(batch, -1, -1, -1).contiguous(), centre[None].expand(batch, -1, -1).contiguous())
            t4 = time.perf_counter()
        for k, v in (("fps", t1 - t0), ("knn", t2 - t1), ("ulip", t_ulip), ("net", (t4 - t3) / batch)):
            t[k] = min(t.get(k, 1e9), v)
    print("BENCH reference (torch %s, %d threads), %d points: FPS %.1f ms, kNN %.1f ms (the rule in float64; "
          "ULIP's float32 formula + topk %.1f ms), network %.1f ms/cloud (batch of %d; %.2f clouds/s)"
          % (torch.__version__, threads, cloud.shape[0], 1000 * t["fps"], 1000 * t["knn"], 1000 * t["ulip"],
             1000 * t["net"], batch, 1 / t["net"]))


def load_ulip(path):
    """The point half of a ULIP checkpoint, as C-MCR's trunks.py loads it (module. dropped)."""
    sd = {k.replace("module.", "", 1): v for k, v in torch.load(path, map_location="cpu")["state_dict"].items()}
    depth = sum(1 for k in sd if k.startswith("point_encoder.blocks.blocks.") and k.endswith(".attn.qkv.weight"))
    e, d = sd["point_encoder.reduce_dim.weight"].shape[1], sd["point_encoder.reduce_dim.weight"].shape[0]
    w = sd["point_encoder.encoder.first_conv.0.weight"].shape[1]
    m = ULIPPoints(d, depth, e, w)
    m.load_state_dict({k: v for k, v in sd.items() if k in m.state_dict()}, strict=True)
    return m.eval()


def embed_files(a):
    """--embed: files to normalised embeddings, in batches, timed from the first read."""
    torch.set_num_threads(a.threads)
    m = load_ulip(a.weights)
    out = []
    t0 = time.perf_counter()
    for s in range(0, len(a.embed), a.batch):
        nbs, cens = [], []
        for f in a.embed[s:s + a.batch]:
            cloud = torch.from_numpy(np.load(f).astype(np.float32))
            xyz = cloud[:, :3].contiguous()
            cent = fps(xyz, GROUPS, a.start)
            idx = knn_ulip(xyz, cent, GROUP_SIZE) if a.knn == "ulip" else knn_rule(xyz, cent, GROUP_SIZE)
            centre = xyz[cent]
            nb = xyz[idx] - centre[:, None, :]
            if cloud.shape[1] > 3:
                nb = torch.cat((nb, cloud[:, 3:][idx]), dim=-1)
            nbs.append(nb)
            cens.append(centre)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            emb = m(torch.stack(nbs), torch.stack(cens)).float()
        out.append(nn.functional.normalize(emb, dim=-1))
    el = time.perf_counter() - t0
    np.save(a.save, torch.cat(out).numpy().astype(np.float32))
    if a.time:
        print("reference: %d clouds in %.2f s (%.3f items/s)" % (len(a.embed), el, len(a.embed) / el))


def seeds(out):
    """fuzz_pointbert's seed: the safetensors header of a tiny model (D 64, one block, E 8) cut
    after the JSON (the harness appends the data the header asks for)."""
    os.makedirs(out, exist_ok=True)
    m = random_model(64, 1, 8, 3, 5)
    st = {k: v for k, v in m.state_dict().items() if "num_batches" not in k}
    save_safetensors_header(st, os.path.join(out, "tiny_header.safetensors"))


if __name__ == "__main__":
    main()
