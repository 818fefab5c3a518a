// Fills the token from the link in the activation email and posts it to
// the users API; shows the answer as text. When the token is refused (it
// expired, or a newer email replaced it), it points to the form that asks
// for a new activation email.
(function () {
  var form = document.getElementById('activate');
  var input = document.getElementById('token');
  var result = document.getElementById('result');
  input.value = new URLSearchParams(location.search).get('token') || '';
  function show(text, ok) { result.textContent = text; result.className = ok ? 'ok' : 'bad'; }
  form.addEventListener('submit', function (e) {
    e.preventDefault();
    show('Activating…', true);
    fetch('/api/v1/users/activate', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token: input.value.trim() })
    }).then(function (r) {
      return r.json().then(function (body) { return { status: r.status, body: body }; });
    }).then(function (r) {
      if (r.status === 200) { show('Your account is active. You can close this page.', true); }
      else {
        show((r.body.error && r.body.error.message) || 'Activation failed.', false);
        if (r.body.error && r.body.error.code === 'invalid_token') { document.getElementById('email').focus(); }
      }
    }).catch(function () { show('Cairn could not be reached; try again.', false); });
  });

  var resend = document.getElementById('resend-form');
  var email = document.getElementById('email');
  var resendResult = document.getElementById('resend-result');
  function showResend(text, ok) { resendResult.textContent = text; resendResult.className = ok ? 'ok' : 'bad'; }
  resend.addEventListener('submit', function (e) {
    e.preventDefault();
    showResend('Sending…', true);
    fetch('/api/v1/users/activation-emails', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ email: email.value.trim() })
    }).then(function (r) {
      return r.json().then(function (body) { return { status: r.status, body: body }; });
    }).then(function (r) {
      if (r.status === 202) { showResend('If an account is waiting for activation at this address, a new email is on its way. Only its link works.', true); }
      else { showResend((r.body.error && r.body.error.message) || 'Asking for a new email failed.', false); }
    }).catch(function () { showResend('Cairn could not be reached; try again.', false); });
  });

  if (input.value) { form.requestSubmit(); }
})();
