"""A live RTSP test source on loopback for the affect-annotate live tests: a still face
(the test photo) at 10 fps, H.264, served by gst-rtsp-server at
rtsp://127.0.0.1:PORT/face until killed.

usage: /usr/bin/python3 rtsp_source.py PORT FACE_JPEG   (Debian's python3-gi and
gir1.2-gst-rtsp-server-1.0, both installed by make setup)
"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main():
    port, face = sys.argv[1], sys.argv[2]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f'( filesrc location="{face}" ! jpegdec ! imagefreeze is-live=true ! video/x-raw,framerate=10/1 '
        "! videoconvert ! videoscale ! video/x-raw,width=320,height=240 ! openh264enc gop-size=10 "
        "! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 )"
    )
    factory.set_shared(True)
    server.get_mount_points().add_factory("/face", factory)
    if server.attach(None) == 0:
        sys.exit(f"rtsp_source: cannot listen on port {port}")
    print(f"rtsp_source: rtsp://127.0.0.1:{port}/face", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
