import logging

from dockyard import accesslog


class Request(dict):
    method, path = "GET", "/v2/shop/web/manifests/v1"


class Response(dict):
    status, body_length = 200, 1234


class Auth:
    subject = "alice"


def test_a_line_names_request_status_bytes_duration_and_the_principal_when_known():
    req = Request(request_id="r1")
    out = accesslog.fields(req, Response(), 0.0123456789)
    assert out == {"request_id": "r1", "method": "GET", "path": "/v2/shop/web/manifests/v1", "status": 200,
                   "bytes": 1234, "duration": 0.012346}
    req["auth"] = Auth()
    assert accesslog.fields(req, Response(), 0)["principal"] == "alice"
    sent = Response(sendfile_bytes=1000)
    assert accesslog.fields(req, sent, 0)["bytes"] == 2234
    req["principal"], req["operation"] = "AKID", "ListClusters"
    out = accesslog.fields(req, Response(), 0)
    assert (out["principal"], out["operation"]) == ("AKID", "ListClusters")


def test_the_setting_turns_it_off_or_sends_it_to_a_file_only(tmp_path):
    for off in ("false", "off", "False", ""):
        assert accesslog.logger_for(off) is None
    assert accesslog.logger_for("true").propagate
    path = tmp_path / "access.log"
    logger = accesslog.logger_for(str(path))
    try:
        assert logger is not None and not logger.propagate
        accesslog.AccessLogger(logger, "").log(Request(request_id="r2"), Response(), 0.5)
        for h in logger.handlers:
            h.flush()
        assert '"request_id":"r2"' in path.read_text() and '"bytes":1234' in path.read_text()
    finally:
        for h in list(logger.handlers):
            logger.removeHandler(h)
            h.close()
        logging.getLogger(accesslog.LOGGER).propagate = True


def test_a_control_request_is_known_by_the_operation_it_names():
    assert accesslog.operation_of("AmazonEC2ContainerServiceV20141113.ListClusters", "/") == "ListClusters"
    assert accesslog.operation_of("", "/service/Route53AutoNaming_v20170314/operation/ListServices") == (
        "ListServices"
    )
    assert accesslog.operation_of("", "/v20190125/meshes") == ""
    req = Request(request_id="r3")
    req.headers = {"X-Amz-Target": "AmazonEC2ContainerServiceV20141113.CreateCluster"}
    assert accesslog.fields(req, Response(), 0)["operation"] == "CreateCluster"
