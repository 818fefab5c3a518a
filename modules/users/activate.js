// Fills the token from the link in the activation email and posts it to
// the users API; shows the answer as text.
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
      else { show((r.body.error && r.body.error.message) || 'Activation failed.', false); }
    }).catch(function () { show('Cairn could not be reached; try again.', false); });
  });
  if (input.value) { form.requestSubmit(); }
})();
