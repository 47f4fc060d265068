"""The encoders from Python, on the small random-weight fixtures: CLIP images (files, bytes,
preprocessed pixels, patches) and prompts, LAION-CLAP sounds and prompts, PointBERT clouds
(files, bytes, arrays): the same floats as `cmcr embed` on the same files with the same batch
size, and errors that name the input."""
import os

import numpy as np
import pytest

import cmcr
from conftest import file_bytes

PROMPTS = ["a photo of a dog", "BBQ", "a train passing by, with its horn", "Café crème - 東京 🎵", "x"]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    Image = pytest.importorskip("PIL.Image", reason="Pillow (Debian's python3-pil) makes the test images")
    d = tmp_path_factory.mktemp("images")
    r = np.random.default_rng(5)
    paths = []
    for name, shape in (("a.jpg", (300, 451, 3)), ("b.png", (640, 200, 3)), ("c.png", (100, 120)),
                        ("d.jpg", (224, 224, 3))):
        p = str(d / name)
        Image.fromarray(r.integers(0, 256, shape, dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


def embed_cli(cli, tmp_path, *args):
    out = tmp_path / ("cli%d.npy" % len(os.listdir(tmp_path)))
    cli("embed", *args, "--out", out, "--quiet")
    return np.load(out), out


def test_clip_images(cli, clip_dir, images, tmp_path):
    clip = cmcr.Clip(os.path.join(clip_dir, "hf"))
    assert clip.dim == 96 and clip.info.image_size == 224 and clip.info.layout == "hf"
    want, path = embed_cli(cli, tmp_path, "--model", os.path.join(clip_dir, "hf"), "--images", *images, "--batch", "3",
                           "--patches", tmp_path / "patches.npy")
    emb, patches = clip.embed_images(images, batch=3, patches=True)
    cmcr.save_matrix(tmp_path / "py.npy", emb)
    assert file_bytes(tmp_path / "py.npy") == file_bytes(path)
    np.testing.assert_array_equal(patches, np.load(tmp_path / "patches.npy"))
    assert patches.shape == (4, clip.patches, 96)
    # from the files' bytes (one by one, in memory), and from preprocessed pixels: the same rows
    np.testing.assert_array_equal(clip.embed_images([file_bytes(p) for p in images], batch=3), want)
    px = np.stack([clip.pixels(p) for p in images])
    np.testing.assert_array_equal(clip.embed_pixels(px), clip.embed_images(images, batch=4))
    out = np.empty((4, 96), np.float32)
    assert clip.embed_images(images, out=out) is out
    raw = clip.embed_images(images[:1], normalize=False)
    assert abs(float(np.linalg.norm(raw)) - 1) > 1e-3
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a picture")
    with pytest.raises(cmcr.Error, match="bad.jpg"):
        clip.embed_images(images[:1] + [str(bad)])
    with pytest.raises(cmcr.Error, match=r"images\[1\]"):  # bytes are named by their place in the list
        clip.embed_images([file_bytes(images[0]), b"not a picture"])
    with pytest.raises(TypeError, match="list"):
        clip.embed_images(images[0])
    with pytest.raises(cmcr.Error, match="prompt"):
        clip.embed_texts(["no tokenizer here"])


def test_clip_prompts(cli, clip_dir, clip_vocab, tmp_path):
    clip = cmcr.Clip(os.path.join(clip_dir, "openai.pt"), tokenizer=clip_vocab)
    assert clip.info.layout == "openai" and clip.info.has_tokenizer
    (tmp_path / "p.txt").write_text("\n".join(PROMPTS) + "\n", encoding="utf-8")
    want, path = embed_cli(cli, tmp_path, "--model", os.path.join(clip_dir, "openai.pt"), "--tokenizer", clip_vocab,
                           "--text", tmp_path / "p.txt")
    got = clip.embed_texts(PROMPTS)
    cmcr.save_matrix(tmp_path / "py.npy", got)
    assert file_bytes(tmp_path / "py.npy") == file_bytes(path)
    ids = clip.tokenize("a photo of a dog")
    assert ids.dtype == np.int32 and ids.shape == (77,) and ids[0] == 49406
    np.testing.assert_array_equal(clip.embed_ids(np.stack([clip.tokenize(p) for p in PROMPTS])), got)
    with pytest.raises(TypeError):
        clip.embed_texts("one string")


def test_clap(cli, clap_dir, roberta, tmp_path):
    model = os.path.join(clap_dir, "clap.pt")
    assert cmcr.encoder_kind(model) == "clap"
    clap = cmcr.load_encoder(model, tokenizer=roberta)
    assert isinstance(clap, cmcr.Clap) and clap.dim == 512 and clap.info.sample_rate == 48000
    sounds = sorted(os.path.join(clap_dir, "audio", f) for f in os.listdir(os.path.join(clap_dir, "audio")))
    want, path = embed_cli(cli, tmp_path, "--model", model, "--audio", *sounds, "--batch", "2")
    got = clap.embed_audio(sounds, batch=2)
    cmcr.save_matrix(tmp_path / "py.npy", got)
    assert file_bytes(tmp_path / "py.npy") == file_bytes(path)
    np.testing.assert_array_equal(clap.embed_audio([file_bytes(s) for s in sounds[:2]], batch=2), want[:2])
    x, longer = clap.audio_input(sounds[3])  # d_long.wav: more than 10 s, the fusion path
    assert x.shape == (clap.info.input_floats,) and longer and not clap.audio_input(sounds[0])[1]
    prompts = open(os.path.join(clap_dir, "prompts.txt"), encoding="utf-8").read().splitlines()
    want, path = embed_cli(cli, tmp_path, "--model", model, "--tokenizer", roberta, "--text",
                           os.path.join(clap_dir, "prompts.txt"))
    cmcr.save_matrix(tmp_path / "pyt.npy", clap.embed_texts(prompts))
    assert file_bytes(tmp_path / "pyt.npy") == file_bytes(path)
    with pytest.raises(cmcr.Error, match="text.wav"):
        (tmp_path / "text.wav").write_text("not a sound")
        clap.embed_audio([str(tmp_path / "text.wav")])


def test_pointbert(cli, pointbert_dir, tmp_path):
    model = os.path.join(pointbert_dir, "ulip.pt")
    pb = cmcr.load_encoder(model)
    assert isinstance(pb, cmcr.PointBert) and pb.info.width == 3 and pb.info.groups > 0
    d = os.path.join(pointbert_dir, "clouds")
    clouds = sorted(os.path.join(d, f) for f in os.listdir(d))
    want, path = embed_cli(cli, tmp_path, "--model", model, "--points", *clouds)
    got = pb.embed_clouds(clouds)
    cmcr.save_matrix(tmp_path / "py.npy", got)
    assert file_bytes(tmp_path / "py.npy") == file_bytes(path)
    # the same clouds as bytes and as arrays (the 10,000-point one left out: its sampling is slow)
    assert np.load(clouds[0]).shape[0] == 10000
    np.testing.assert_array_equal(pb.embed_clouds([file_bytes(c) for c in clouds[1:]]), want[1:])
    arrays = [np.load(c) for c in clouds[1:]]
    np.testing.assert_array_equal(pb.embed_clouds(arrays), want[1:])
    np.testing.assert_array_equal(pb.embed_clouds([arrays[0].astype(np.float64)]), want[1:2])  # converted
    with pytest.raises(cmcr.Error, match=r"clouds\[0\]"):
        pb.embed_clouds([np.zeros((10, 3), np.float32)])  # fewer than 32 points
    with pytest.raises(cmcr.ArgumentError, match="no text tower"):
        pb.tokenize("a chair")
    with pb:
        pass
    with pytest.raises(cmcr.ArgumentError, match="closed"):
        pb.embed_clouds(clouds)


def test_inputs_of_the_models(clap_dir, roberta, pointbert_dir):
    clap = cmcr.Clap(os.path.join(clap_dir, "clap.pt"), tokenizer=roberta)
    ids = clap.tokenize("BBQ")
    assert ids.shape == (clap.context,) and ids[0] == 0 and ids[-1] == 1  # <s> ... <pad>
    pb = cmcr.PointBert(os.path.join(pointbert_dir, "ulip.pt"))
    path = os.path.join(pointbert_dir, "clouds", "c4_2048.npy")
    x = pb.cloud_input(path)
    assert x.shape == (pb.info.input_floats,) and x.dtype == np.float32
    np.testing.assert_array_equal(pb.cloud_input(np.load(path)), x)
    np.testing.assert_array_equal(pb.cloud_input(file_bytes(path)), x)
