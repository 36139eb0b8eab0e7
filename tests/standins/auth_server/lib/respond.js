'use strict';
// Response helpers. Errors always look like {"success": false, "message": "...", "code": "..."};
// successes depend on the response shape: wrapped {"success": true, "data": {...}, "message"?} or
// bare {...data, "message"?}.

function sendError(res, status, code, message, extra) {
  res.status(status).json({ success: false, message, code, ...(extra || {}) });
}

function sendOk(res, shape, status, data, message) {
  let body;
  if (shape === 'bare') {
    body = { ...(data || {}) };
    if (message) body.message = message;
  } else {
    body = { success: true };
    if (message) body.message = message;
    if (data) body.data = data;
  }
  res.status(status).json(body);
}

module.exports = { sendError, sendOk };
