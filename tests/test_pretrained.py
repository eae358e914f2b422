"""Released-model downloads, served from 127.0.0.1: fetched once, verified, reused offline."""

import http.server
import os
import shutil
import threading

import numpy as np
import pytest

from conftest import FIXTURE_OPTIONS, FIXTURE_WEIGHTS

from elmo_keras import ElmoEmbedder
from elmo_keras.pretrained import DownloadError, fetch_pretrained, model_urls

STEM = "2x1024_128_2048cnn_1xhighway"


class _Server:
    """A static file server on 127.0.0.1 that counts requests and can lie about lengths."""

    def __init__(self, root):
        self.requests = []
        self.short_body = False
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(root), **kwargs)

            def do_GET(self):
                server.requests.append(self.path)
                if server.short_body and self.path.endswith(".hdf5"):
                    data = open(os.path.join(root, self.path.lstrip("/")), "rb").read()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 3])
                    return
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/elmo"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    folder = root / "elmo" / STEM
    folder.mkdir(parents=True)
    shutil.copy(FIXTURE_OPTIONS, folder / f"elmo_{STEM}_options.json")
    shutil.copy(FIXTURE_WEIGHTS, folder / f"elmo_{STEM}_weights.hdf5")
    s = _Server(root)
    yield s, folder
    s.stop()


def test_official_addresses():
    options, weights = model_urls("original")
    assert options == ("https://s3-us-west-2.amazonaws.com/allennlp/models/elmo/2x4096_512_2048cnn_2xhighway/"
                       "elmo_2x4096_512_2048cnn_2xhighway_options.json")
    assert weights.endswith("/2x4096_512_2048cnn_2xhighway/elmo_2x4096_512_2048cnn_2xhighway_weights.hdf5")
    assert model_urls("original_5.5b")[1].endswith("_5.5B/elmo_2x4096_512_2048cnn_2xhighway_5.5B_weights.hdf5")
    with pytest.raises(ValueError, match="unknown pretrained model 'huge'"):
        model_urls("huge")


def test_fetch_once_then_offline(server, tmp_path):
    srv, _ = server
    cache = tmp_path / "cache"
    options_file, weight_file = fetch_pretrained("small", cache_dir=str(cache), mirror=srv.url, progress=False)
    assert len(srv.requests) == 2
    assert open(weight_file, "rb").read() == open(FIXTURE_WEIGHTS, "rb").read()
    srv.stop()  # offline from here on
    again = fetch_pretrained("small", cache_dir=str(cache), mirror="http://127.0.0.1:9/unreachable",
                             progress=False)
    assert again == (options_file, weight_file)
    embedder = ElmoEmbedder.from_pretrained("small", cache_dir=str(cache), mirror="http://127.0.0.1:9/x")
    reference = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS)
    np.testing.assert_array_equal(embedder.embed_sentence(["a", "b"]), reference.embed_sentence(["a", "b"]))


def test_partial_download_is_never_used(server, tmp_path):
    srv, _ = server
    srv.short_body = True
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError, match="weights.hdf5"):
        fetch_pretrained("small", cache_dir=str(cache), mirror=srv.url, progress=False)
    assert not (cache / "small" / "weights.hdf5").exists()
    assert not (cache / "small" / "manifest.json").exists()
    srv.short_body = False
    fetch_pretrained("small", cache_dir=str(cache), mirror=srv.url, progress=False)
    assert (cache / "small" / "manifest.json").exists()


def test_corrupt_download_fails_verification(server, tmp_path):
    srv, folder = server
    data = open(FIXTURE_WEIGHTS, "rb").read()
    (folder / f"elmo_{STEM}_weights.hdf5").write_bytes(data[: len(data) // 2])
    with pytest.raises(DownloadError, match="not a complete hdf5 weights file"):
        fetch_pretrained("small", cache_dir=str(tmp_path / "cache"), mirror=srv.url, progress=False)
    assert not (tmp_path / "cache" / "small").exists()


def test_damaged_cache_is_fetched_again(server, tmp_path):
    srv, _ = server
    cache = tmp_path / "cache"
    _, weight_file = fetch_pretrained("small", cache_dir=str(cache), mirror=srv.url, progress=False)
    with open(weight_file, "r+b") as f:
        f.seek(os.path.getsize(weight_file) // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    fetch_pretrained("small", cache_dir=str(cache), mirror=srv.url, progress=False)
    assert len(srv.requests) == 4
    assert open(weight_file, "rb").read() == open(FIXTURE_WEIGHTS, "rb").read()


def test_unreachable_server_gives_clear_error(tmp_path):
    with pytest.raises(DownloadError, match="download failed"):
        fetch_pretrained("small", cache_dir=str(tmp_path), mirror="http://127.0.0.1:9/none", progress=False)
